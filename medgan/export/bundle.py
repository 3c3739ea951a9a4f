"""The release bundle: what leaves the hospital so others can sample new synthetic scans.

The bundle contains exactly these files, copied from an allow-list and never by globbing
a folder, so no discriminator, optimizer state, cache or training scan can slip in::

    generator.safetensors   generator weights (safetensors: loading runs no code)
    generator.json          architecture, profile, labels and the weights' SHA-256
    config.yaml             the run's public configuration, with bundle_format and medgan_version
    dataset_card.json       the dataset card (privacy ledger, evaluation, intended use)
    DATASET_CARD.md         the same card for people
    README.md               how to load it: ``medgan generate --bundle DIR --out OUT``
    MANIFEST.json           SHA-256 of every other file

``medgan generate --bundle DIR`` reads ``generator.json`` and ``generator.safetensors``
from the bundle's top level.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from pathlib import Path

import yaml

from medgan import __version__
from medgan.errors import InputError, LeakError, PrivacyError
from medgan.export.card import build_card, render_markdown, scrub_site_paths
from medgan.export.leaks import identifiers_from_run, scan_folder
from medgan.export.run import load_run_inputs
from medgan.fileio import sha256_file, write_json_atomic, write_text_atomic

__all__ = ["BUNDLE_FORMAT", "BUNDLE_FILES", "write_bundle", "check_safetensors"]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
WEIGHTS_NAME = "generator.safetensors"
GENERATOR_CONFIG_NAME = "generator.json"
BUNDLE_FILES = (
    WEIGHTS_NAME,
    GENERATOR_CONFIG_NAME,
    "config.yaml",
    "dataset_card.json",
    "DATASET_CARD.md",
    "README.md",
    "MANIFEST.json",
)
_MAX_SAFETENSORS_HEADER = 100 << 20

_README = """# medgan generator bundle

This folder is a released medgan generator. It contains model weights, never any scan.
Read DATASET_CARD.md first: it states the privacy budget, what it covers and what it
does not, the evaluation results and the intended use.

## Sample new synthetic scans

    pip install medgan=={version}
    medgan generate --bundle . --out synthetic --n 4 --seed 1234

`medgan generate` checks the SHA-256 of `generator.safetensors` against
`generator.json` before loading, and writes NIfTI volumes in the profile's canonical
geometry with an `index.json`.

## Files

- `generator.safetensors`: the weights, in safetensors format, which loads without running code.
- `generator.json`: architecture, preprocessing profile, label vocabulary, modality, privacy statement.
- `config.yaml`: the training run's configuration (site paths removed), format {bundle_format}.
- `MANIFEST.json`: SHA-256 of every file, to check the bundle after copying.
"""


def check_safetensors(path: Path) -> dict:
    """Parse the header of a safetensors file and return it.

    A file that is not safetensors (for example a torch pickle renamed) is rejected,
    because unpickling runs arbitrary code on the machine that loads the bundle.

    Raises:
        InputError: the file is not a valid safetensors file.
    """
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        size = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 2 <= size <= _MAX_SAFETENSORS_HEADER:
            raise InputError(f"{path} is not a safetensors file (header size {size}); only safetensors weights are released")
        raw = stream.read(size)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path} is not a safetensors file (its header is not JSON); only safetensors weights are released") from None
    if not isinstance(header, dict):
        raise InputError(f"{path} is not a safetensors file (its header is not a JSON object)")
    return header


def write_bundle(run_dir: str | Path, out_dir: str | Path, *, allow_non_private: bool = False) -> Path:
    """Write a run's release bundle to ``out_dir`` and return it.

    The bundle is built in a temporary folder, checked by the leak scanner and renamed
    into place, so a rejected bundle leaves nothing behind.

    Args:
        run_dir: the run folder (its generator/, config.yaml and report.json are read).
        out_dir: destination; must not exist or be empty.
        allow_non_private: release the weights of a generator trained without
            differential privacy, which can reproduce training scans.

    Raises:
        InputError: the generator files are missing, not safetensors, or do not match
            the SHA-256 that generator.json records.
        PrivacyError: the generator is not private and ``allow_non_private`` is False.
        LeakError: the bundle contains an identifier of the source cohort.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir).absolute()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"bundle folder {out_dir} is not empty; choose a new folder")
    inputs = load_run_inputs(run_dir)
    generator_dir = run_dir / "generator"
    weights = generator_dir / WEIGHTS_NAME
    generator_config = generator_dir / GENERATOR_CONFIG_NAME
    for path in (weights, generator_config):
        if not path.is_file():
            raise InputError(f"{path} not found; train the run before writing a bundle")
    check_safetensors(weights)
    try:
        meta = json.loads(generator_config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{generator_config} is not valid JSON ({error})") from None
    digest = sha256_file(weights)
    if meta.get("weights_sha256") not in (None, digest):
        raise InputError(f"{weights} does not match the SHA-256 recorded in {generator_config}; the weights changed after training")
    privacy = inputs.report.get("privacy") or {}
    if not privacy.get("private", False) and not allow_non_private:
        raise PrivacyError(
            f"the generator of {run_dir} was trained without differential privacy, so its weights can reproduce "
            "training scans; retrain with privacy.enabled, or pass allow_non_private (--allow-non-private) knowingly"
        )

    identifiers = identifiers_from_run(run_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_dir.with_name(f".{out_dir.name}.tmp-{secrets.token_hex(4)}")
    temporary.mkdir()
    try:
        shutil.copyfile(weights, temporary / WEIGHTS_NAME)
        shutil.copyfile(generator_config, temporary / GENERATOR_CONFIG_NAME)
        config = {"bundle_format": BUNDLE_FORMAT, "medgan_version": __version__, **scrub_site_paths(inputs.config)}
        write_text_atomic(temporary / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        warnings = [] if privacy.get("private", False) else ["released although trained without differential privacy"]
        card = build_card(
            report=inputs.report,
            config=inputs.config,
            generator_sha256=digest,
            fmt="generator bundle",
            release=True,
            written=[],
            left_out=[],
            uncovered_steps=[],
            review={"note": "a bundle releases the generator; synthetic scans drawn from it are not reviewed"},
            intensity={},
            geometry={},
            warnings=warnings,
        )
        card["dataset"]["kind"] = "generator bundle"
        write_json_atomic(temporary / "dataset_card.json", card)
        write_text_atomic(temporary / "DATASET_CARD.md", render_markdown(card))
        write_text_atomic(temporary / "README.md", _README.format(version=__version__, bundle_format=BUNDLE_FORMAT))
        manifest = {name: sha256_file(temporary / name) for name in BUNDLE_FILES if (temporary / name).is_file()}
        write_json_atomic(temporary / "MANIFEST.json", {"bundle_format": BUNDLE_FORMAT, "sha256": manifest})
        findings = scan_folder(temporary, identifiers)
        if findings:
            listing = "; ".join(str(finding) for finding in findings[:10])
            raise LeakError(f"bundle {out_dir} stopped: the leak scanner found {len(findings)} identifier(s) ({listing}); nothing was written")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(temporary, out_dir)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
    logger.info("bundle written to %s", out_dir)
    return out_dir
