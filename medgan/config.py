"""The pipeline configuration: one typed model composed of each stage's section.

A pipeline YAML file maps section names to their options.  ``--set a.b=value``
overrides are applied before validation, values parsed as YAML scalars, so the
resolved configuration a run records is exactly what it ran with.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from medgan.configbase import Section
from medgan.data.config import DataConfig, PreprocessConfig
from medgan.errors import ConfigError
from medgan.evaluation.config import EvaluationConfig
from medgan.export.config import ExportConfig
from medgan.models.config import ModelConfig
from medgan.privacy.config import PrivacyConfig
from medgan.training.config import GenerateConfig, TrainConfig

__all__ = ["PipelineConfig", "load_pipeline", "apply_overrides", "public_config", "scrub_site_paths"]


class PipelineConfig(Section):
    """Everything one ``medgan run`` needs."""

    name: str = Field("medgan-run", description="Human-readable run name used in reports and the dataset card.")
    data: DataConfig
    preprocess: PreprocessConfig = PreprocessConfig()
    model: ModelConfig = ModelConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    train: TrainConfig = TrainConfig()
    generate: GenerateConfig = GenerateConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.sub=value`` overrides applied.

    Raises:
        ConfigError: an override is not of the form ``key=value``.
    """
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not of the form section.key=value (for example train.steps=20)")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
    return result


def _suggest(location: tuple[Any, ...], model: type[Section]) -> str:
    """Return a ' (did you mean X?)' hint for an unknown key, or ''."""
    target: Any = model
    for part in location[:-1]:
        field = getattr(target, "model_fields", {}).get(part)
        if field is None:
            return ""
        target = field.annotation
    known = list(getattr(target, "model_fields", {}))
    matches = difflib.get_close_matches(str(location[-1]), known, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        location = tuple(item["loc"])
        dotted = ".".join(str(part) for part in location)
        if item["type"] == "extra_forbidden":
            lines.append(f"{dotted}: unknown option{_suggest(location, PipelineConfig)}")
        else:
            lines.append(f"{dotted}: {item['msg']} (got {item.get('input')!r})")
    return f"invalid configuration in {source}:\n  " + "\n  ".join(lines)


def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Read, override and validate a pipeline YAML file.

    Relative paths in ``data.manifest`` and other path options resolve against the
    folder of the pipeline file, so a pipeline works from any working directory.

    Raises:
        ConfigError: the file is missing, is not a YAML mapping, or fails validation;
            every invalid option is listed.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"pipeline file {path} not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"pipeline file {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"pipeline file {path} must contain a mapping of sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    data = raw.get("data")
    if isinstance(data, dict) and data.get("manifest"):
        manifest = Path(str(data["manifest"]))
        if not manifest.is_absolute():
            data["manifest"] = str((path.parent / manifest).resolve())
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, str(path))) from None


SITE_PATH = "<site path>"
WITHHELD_SEED = "<withheld>"


def scrub_site_paths(node: Any) -> Any:
    """Return ``node`` with every string that looks like a file path replaced by ``<site path>``."""
    if isinstance(node, dict):
        return {key: scrub_site_paths(value) for key, value in node.items()}
    if isinstance(node, list):
        return [scrub_site_paths(value) for value in node]
    if isinstance(node, str) and ("/" in node or "\\" in node):
        return SITE_PATH
    return node


def public_config(config: PipelineConfig) -> dict[str, Any]:
    """Return the configuration as plain data without site paths or the training seed.

    This is the version written to the public part of a run and to dataset cards; the
    full one stays in the private folder.  The training seed is withheld because in
    seeded mode it determines the DP noise, and the guarantee holds only while it is
    secret.
    """
    payload = scrub_site_paths(config.model_dump(mode="json"))
    if payload.get("train", {}).get("seed") is not None:
        payload["train"]["seed"] = WITHHELD_SEED
    return payload
