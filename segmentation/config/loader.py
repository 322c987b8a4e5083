"""Loading the configuration: YAML files and command-line overrides loaded into frozen, validated pydantic models.

Layers, later ones win: the models' field defaults (``conf/base.yaml`` states them), each ``--config`` file in
order (a file may name its own ``base:`` file, relative to itself), ``--set key.path=value`` overrides, then
``--input`` and ``--output``. The models check types, choices, bounds and cross-field rules; ``load`` then
checks the paths. Every error is a ``ConfigError`` naming where the value came from and the key.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

import yaml
from pydantic import ValidationError

from segmentation.config.paths import input_root, is_local_path, local_path
from segmentation.config.schema import JobConfig
from segmentation.config.wording import explain
from segmentation.errors import ConfigError


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One YAML file as a mapping, following its ``base:`` chain; errors name the file."""
    return _read_layered(Path(path), seen=())


class _TextDatesLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: a date stays text, so a bad one is reported with its key."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_TextDatesLoader)  # a SafeLoader subclass: no arbitrary objects


def _read_layered(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: 'base' files form a cycle")
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = _yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return {"__source__": str(path), **data}
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {type(base).__name__}")
    merged = _read_layered(path.parent / base, seen=(*seen, resolved))
    return {"__layers__": [merged, {"__source__": str(path), **data}]}


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` with the value read as YAML (``5`` is a number, ``[a, b]`` a list, dates stay text)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    try:
        value = _yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def load(
    config_files: Sequence[str | os.PathLike[str]] = (),
    overrides: Sequence[str] = (),
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    input_table: str | None = None,
    check_paths: bool = True,
    paths_needed: bool = True,
    flags: Sequence[tuple[str, str, Any]] = (),
) -> JobConfig:
    """Build and validate a JobConfig from files, ``--set`` overrides, explicit paths and table (``paths_needed``
    False: a command that only needs the session settings, such as ``report``); ``flags``: ``(flag, key,
    value)`` set after the overrides, errors naming the flag (``--as-of``)."""
    cfg, _ = load_with_origins(
        config_files,
        overrides,
        input_path=input_path,
        output_path=output_path,
        input_table=input_table,
        check_paths=check_paths,
        paths_needed=paths_needed,
        flags=flags,
    )
    return cfg


def load_with_origins(
    config_files: Sequence[str | os.PathLike[str]] = (),
    overrides: Sequence[str] = (),
    *,
    input_path: str | None = None,
    output_path: str | None = None,
    input_table: str | None = None,
    check_paths: bool = True,
    paths_needed: bool = True,
    flags: Sequence[tuple[str, str, Any]] = (),
) -> tuple[JobConfig, dict[str, str]]:
    """``load``, and where each key given was set: dotted key -> a file, ``--set KEY``, ``--input``, ...
    (a key that is not there has its default; ``origin_of``)."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for file in config_files:
        _merge_layers(values, origin, read_yaml(file))
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(values, origin, key, value, f"--set {key}")
    for flag, key, value in flags:
        _set_dotted(values, origin, key, value, flag)
    if input_path is not None:  # the command line's input replaces the files' (a path or a table)
        _set_dotted(values, origin, "input.path", input_path, "--input")
        _set_dotted(values, origin, "input.table", None, "--input")
    if output_path is not None:
        _set_dotted(values, origin, "output.path", output_path, "--output")
    if input_table is not None:
        _set_dotted(values, origin, "input.table", input_table, "--input-table")
        _set_dotted(values, origin, "input.path", None, "--input-table")
    try:
        cfg = JobConfig.model_validate(values)
    except ValidationError as exc:  # from None: pydantic's text would echo the value (a key put in a file)
        _fail(origin, *explain(exc.errors()[0]))
    if paths_needed and (problem := next(_path_problems(cfg, check_paths), None)):
        key, message = problem  # named by where that very key was set; a path that is missing was set nowhere
        given = {"input.path": cfg.input.path, "output.path": cfg.output.path}.get(key) is not None
        raise ConfigError(f"{origin[key]}: {key}: {message}" if given and key in origin else f"{key}: {message}")
    return cfg, origin


def origin_of(origin: Mapping[str, str], key: str) -> str:
    """Where ``key`` (dotted) got its value: the nearest of it and its parents that was set, else ``default``."""
    probe = key.partition("[")[0]
    while probe and probe not in origin:
        probe = probe.rpartition(".")[0]
    return origin.get(probe, "default")


def _merge_layers(values: dict[str, Any], origin: dict[str, str], layer: dict[str, Any]) -> None:
    for sub in layer.get("__layers__", ()):
        _merge_layers(values, origin, sub)
    source = layer.get("__source__", "<config>")
    own = {k: v for k, v in layer.items() if k not in ("__layers__", "__source__")}
    _deep_merge(values, origin, "", own, source)


def _deep_merge(target: dict[str, Any], origin: dict[str, str], prefix: str, layer: Mapping, source: str) -> None:
    for raw_key, value in layer.items():
        key = str(raw_key)
        dotted = f"{prefix}.{key}" if prefix else key
        origin[dotted] = source
        if isinstance(value, dict):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _deep_merge(target[key], origin, dotted, value, source)
        else:
            target[key] = value


def _set_dotted(values: dict[str, Any], origin: dict[str, str], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = values
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            node[part] = {}
        origin.setdefault(".".join(parts[: depth + 1]), source)
        node = node[part]
    node[parts[-1]] = value
    origin[key] = source
    if isinstance(value, dict):  # a mapping set whole: each of its keys came from here too
        _deep_merge({}, origin, key, value, source)


def _fail(origin: Mapping[str, str], key: str, message: str) -> NoReturn:
    raise ConfigError(f"{origin_of(origin, key)}: {key}: {message}") from None


def _path_problems(cfg: JobConfig, check_paths: bool) -> Iterator[tuple[str, str]]:
    inp, out = cfg.input.path, cfg.output.path
    if inp is None and cfg.input.table is None:
        yield "input.path", "no input given; set input.path or input.table, or pass --input PATH or --input-table NAME"
        return
    if out is None:
        yield "output.path", "no output given; pass --output PATH (or set output.path in a config)"
        return
    if inp is None:  # a catalog table: read through the session's catalog; only the output is checked here
        if not is_local_path(out) and ".." in Path(urlparse(out).path).parts:
            yield (
                "output.path",
                f"'..' is not allowed in a {urlparse(out).scheme}: path; give the full path instead of {out!r}",
            )
        return
    for key, path in (("input.path", inp), ("output.path", out)):
        # local paths with '..' are resolved before they are compared; object stores do not resolve '..'
        if not is_local_path(path) and ".." in Path(urlparse(path).path).parts:
            yield key, f"'..' is not allowed in a {urlparse(path).scheme}: path; give the full path instead of {path!r}"
    if check_paths and is_local_path(inp) and not glob.glob(local_path(inp)):
        yield "input.path", f"no file or folder matches {inp!r}"
    if is_local_path(inp) and is_local_path(out):
        written, read = Path(local_path(out)).resolve(), Path(local_path(input_root(inp))).resolve()
        if written == read or read in written.parents:
            yield "output.path", f"the output {out!r} is inside the input {inp!r}; write it elsewhere"
        if written in read.parents:
            yield "output.path", f"the input {inp!r} is inside the output {out!r}; write it elsewhere"
