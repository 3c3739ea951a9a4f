"""Per-cohort ledger: keys, sums, budget refusal and concurrent writers."""

from __future__ import annotations

import hashlib
import math
import multiprocessing

import pytest

from medgan.errors import PrivacyError
from medgan.privacy.ledger import CohortLedger, cohort_key


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


MANIFEST = sha("manifest")
FILES = [sha("scan-a"), sha("scan-b"), sha("scan-c")]
KEY = cohort_key(MANIFEST, FILES)


def test_key_ignores_file_order():
    assert cohort_key(MANIFEST, list(reversed(FILES))) == KEY


def test_key_changes_with_file():
    assert cohort_key(MANIFEST, [*FILES[:2], sha("scan-d")]) != KEY


def test_key_changes_with_manifest():
    assert cohort_key(sha("other manifest"), FILES) != KEY


def test_key_rejects_bad_hash():
    with pytest.raises(PrivacyError, match="64 lowercase hex"):
        cohort_key("abc", FILES)


def test_key_rejects_no_files():
    with pytest.raises(PrivacyError, match="none were given"):
        cohort_key(MANIFEST, [])


def test_spent_sums_runs(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 1.5, 1e-5, "prv")
    ledger.record_run(KEY, "run-2", 2.25, 2e-5, "rdp")
    assert ledger.spent(KEY) == pytest.approx(3.75)
    assert ledger.spent_delta(KEY) == pytest.approx(3e-5)


def test_spent_separates_cohorts(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 1.5, 1e-5, "prv")
    assert ledger.spent(cohort_key(MANIFEST, FILES[:2])) == 0.0


def test_record_replaces_same_run(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 1.0, 1e-5, "prv")
    ledger.record_run(KEY, "run-1", 2.0, 1e-5, "prv")
    assert ledger.spent(KEY) == 2.0


def test_budget_refused_when_exceeded(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 6.0, 1e-5, "prv")
    with pytest.raises(PrivacyError, match="already spent 6 of its budget 10"):
        ledger.check_budget(KEY, 5.0, 10.0, run_id="run-2")


def test_refused_run_not_reserved(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 6.0, 1e-5, "prv")
    with pytest.raises(PrivacyError):
        ledger.check_budget(KEY, 5.0, 10.0, run_id="run-2")
    assert ledger.spent(KEY) == 6.0


def test_budget_allows_exact_fit(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 6.0, 1e-5, "prv")
    assert ledger.check_budget(KEY, 4.0, 10.0) == pytest.approx(0.0)


def test_reservation_counts_until_recorded(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.check_budget(KEY, 4.0, 10.0, run_id="run-1", delta=1e-5)
    assert ledger.spent(KEY) == 4.0
    ledger.record_run(KEY, "run-1", 3.5, 1e-5, "prv")
    assert ledger.spent(KEY) == 3.5


def test_reservation_blocks_second_run(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.check_budget(KEY, 6.0, 10.0, run_id="run-1")
    with pytest.raises(PrivacyError, match="budget 10"):
        ledger.check_budget(KEY, 6.0, 10.0, run_id="run-2")


def test_resumed_run_not_counted_twice(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.check_budget(KEY, 6.0, 10.0, run_id="run-1")
    assert ledger.check_budget(KEY, 6.0, 10.0, run_id="run-1") == pytest.approx(4.0)


def test_infinite_run_exhausts_budget(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "released-without-dp", math.inf, 0.0, "none")
    with pytest.raises(PrivacyError):
        ledger.check_budget(KEY, 0.5, 10.0)


def test_negative_epsilon_rejected(tmp_path):
    with pytest.raises(PrivacyError, match="Epsilon -1"):
        CohortLedger(tmp_path).record_run(KEY, "run-1", -1.0, 1e-5, "prv")


def test_entries_keep_status(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.check_budget(KEY, 4.0, None, run_id="run-1")
    ledger.record_run(KEY, "run-2", 1.0, 1e-5, "prv")
    statuses = {entry.run_id: entry.status for entry in ledger.entries(KEY)}
    assert statuses == {"run-1": "reserved", "run-2": "recorded"}


def _record_many(directory: str, prefix: str, count: int) -> None:
    ledger = CohortLedger(directory)
    for index in range(count):
        ledger.record_run(KEY, f"{prefix}-{index}", 0.25, 1e-6, "prv")


def _reserve(directory: str, run_id: str, queue) -> None:
    try:
        CohortLedger(directory).check_budget(KEY, 4.0, 10.0, run_id=run_id)
        queue.put("reserved")
    except PrivacyError:
        queue.put("refused")


def test_concurrent_writers_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_record_many, args=(str(tmp_path), name, 40)) for name in ("a", "b")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    ledger = CohortLedger(tmp_path)
    assert len(ledger.entries(KEY)) == 80
    assert ledger.spent(KEY) == pytest.approx(20.0)


def test_concurrent_reservations_respect_budget(tmp_path):
    # Four runs of epsilon 4 race for a budget of 10: exactly two may start.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_reserve, args=(str(tmp_path), f"run-{index}", queue)) for index in range(4)]
    for process in processes:
        process.start()
    outcomes = sorted(queue.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    assert outcomes == ["refused", "refused", "reserved", "reserved"]
    assert CohortLedger(tmp_path).spent(KEY) == 8.0


OTHER_KEY = cohort_key(MANIFEST, [*FILES, sha("scan-d")])


def test_overlapping_cohort_charged(tmp_path):
    # A cohort with one extra scan has a new key, but its shared scans carry their spend.
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 7.0, 1e-5, "prv", members=FILES)
    with pytest.raises(PrivacyError, match="already spent 7 of its budget 10"):
        ledger.check_budget(OTHER_KEY, 4.0, 10.0, run_id="run-2", members=[*FILES, sha("scan-d")])


def test_disjoint_members_not_charged(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 7.0, 1e-5, "prv", members=FILES)
    new_members = [sha("scan-x"), sha("scan-y")]
    remaining = ledger.check_budget(cohort_key(MANIFEST, new_members), 4.0, 10.0, members=new_members)
    assert remaining == pytest.approx(6.0)


def test_member_spend_sums_runs(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.record_run(KEY, "run-1", 2.0, 1e-5, "prv", members=FILES)
    ledger.record_run(OTHER_KEY, "run-2", 3.0, 1e-5, "prv", members=[*FILES, sha("scan-d")])
    assert ledger.spent_by_members([sha("scan-a")]) == 5.0
    assert ledger.spent_by_members([sha("scan-d")]) == 3.0


def test_reserved_members_kept_on_record(tmp_path):
    ledger = CohortLedger(tmp_path)
    ledger.check_budget(KEY, 4.0, 10.0, run_id="run-1", members=FILES)
    ledger.record_run(KEY, "run-1", 3.0, 1e-5, "prv")
    assert ledger.spent_by_members([sha("scan-b")]) == 3.0
