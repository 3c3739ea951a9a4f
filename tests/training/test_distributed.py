"""Two gloo processes on CPU: patient sampling across processes and the accounting of a DP run."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medgan.runs import RunLayout
from medgan.training import train_gan
from medgan.training.sampler import DistributedPatientSampler
from tests.training.conftest import make_cohort
from tests.training.test_train import _config

pytestmark = pytest.mark.slow

N_PATIENTS = 12
RATE = 0.25
STEPS = 400


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder: str, task: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        out = Path(folder)
        if task == "sampler":
            sampler = DistributedPatientSampler(
                [[i] for i in range(N_PATIENTS)], RATE, torch.Generator().manual_seed(100 + rank), steps=STEPS, shuffle_seed=0
            )
            draws = [sampler.sample()[0] for _ in range(STEPS)]
            (out / f"draws-{rank}.json").write_text(json.dumps(draws))
        else:
            result = train_gan(make_cohort([1] * N_PATIENTS), _config(out), RunLayout(out / "run"), progress=False)
            (out / f"result-{rank}.json").write_text(json.dumps({"privacy": result.privacy, "steps": result.steps}))
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path, task: str) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), task), nprocs=2, join=True)


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sampler")
    _spawn(folder, "sampler")
    return [json.loads((folder / f"draws-{rank}.json").read_text()) for rank in range(2)]


def test_distributed_sampler_ranks_disjoint(draws):
    assert all(not set(a) & set(b) for a, b in zip(*draws))


def test_distributed_sampler_no_repeats_within_rank(draws):
    assert all(len(set(batch)) == len(batch) for rank in draws for batch in rank)


def test_distributed_sampler_every_step_yielded(draws):
    # Opacus' own iterator skips empty local batches, which would desynchronise the ranks.
    assert [len(rank) for rank in draws] == [STEPS, STEPS]


def test_distributed_sampler_patient_rate_is_q(draws):
    counts = [sum(patient in a + b for a, b in zip(*draws)) for patient in range(N_PATIENTS)]
    assert all(abs(count / STEPS - RATE) < 0.08 for count in counts)


def test_distributed_sampler_global_batch_mean(draws):
    sizes = [len(a) + len(b) for a, b in zip(*draws)]
    assert abs(sum(sizes) / STEPS - RATE * N_PATIENTS) < 0.3


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    _spawn(folder, "train")
    return folder, [json.loads((folder / f"result-{rank}.json").read_text()) for rank in range(2)]


def test_distributed_run_ranks_agree(two_process_run):
    _, results = two_process_run
    assert results[0] == results[1]


def test_distributed_run_accounting_matches_single_process(two_process_run, tmp_path):
    _, results = two_process_run
    single = train_gan(make_cohort([1] * N_PATIENTS), _config(tmp_path), RunLayout(tmp_path / "run"), progress=False)
    keys = ("epsilon", "sample_rate", "steps", "noise_multiplier", "delta")
    assert {k: results[0]["privacy"][k] for k in keys} == {k: single.privacy[k] for k in keys}


def test_distributed_run_writes_one_step_log(two_process_run):
    folder, _ = two_process_run
    lines = (folder / "run" / "private" / "checkpoints" / "step_ledger.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 7))


def test_distributed_run_generator_saved(two_process_run):
    folder, _ = two_process_run
    weights = folder / "run" / "generator" / "generator.safetensors"
    meta = json.loads((folder / "run" / "generator" / "generator.json").read_text())
    assert meta["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
