"""Reading and writing config dataclasses: YAML in, strict key and type checks, YAML out."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from tribert.errors import ConfigError


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one YAML value against a dataclass field type (the common cases only)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return tuple(value)
    if origin in (list,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return list(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is str:
        if value is None:  # "key:" in YAML, "--set key=" on the command line: the empty string
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value  # Optional[...] and other unions: taken as given


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, refusing unknown keys with a clear message.

    ``where``: the dotted path of ``data`` in the config ("" for the top level), for the messages.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {where + '.' if where else ''}{unknown[0]} (known keys: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict:
    """Dataclass -> plain nested dict (tuples become lists) for YAML/JSON."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(obj))


class _DuplicateKey(Exception):
    pass


def _strict_loader():
    """PyYAML's SafeLoader, except that a key given twice in one mapping is an error (PyYAML keeps
    the last one silently: an edited recipe with `lr` twice would train with whichever came last)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKey(f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line})")
                    seen[key] = line
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    pass
            return super().construct_mapping(node, deep)

    return StrictLoader


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, turning every failure into a one-line ConfigError naming the file."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ConfigError("is a folder, not a config file", path)
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_strict_loader())
    except UnicodeDecodeError as err:
        raise ConfigError(f"not a text YAML file (byte {err.start} is not UTF-8)", path) from None
    except _DuplicateKey as err:
        raise ConfigError(str(err), path) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML ({str(err).splitlines()[0]})", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a config file must hold a mapping at the top level", path)
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict."""
    import yaml

    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        if not all(part.strip() for part in parts):
            raise ConfigError(f"override {item!r} must look like section.key=value")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:  # "[", ": x": not YAML, so taken as the text typed (the field's type check names it)
            node[parts[-1]] = raw
    return data


def dump_yaml(obj: Any, path: str | Path) -> None:
    """Write a dataclass (or dict) as YAML, atomically."""
    import yaml

    from tribert.io import atomic_write_text

    data = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


__all__ = ["from_dict", "to_dict", "load_yaml", "apply_overrides", "dump_yaml"]
