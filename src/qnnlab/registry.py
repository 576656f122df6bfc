"""Registries of named entries whose errors list the choices, and the strict schemas of config tables.

A registry that holds schema'd entries (data sets, models, methods: each entry has a
``config``, the pydantic :class:`Schema` of its TOML table) also validates tables for them:
:func:`registered` is the pydantic field type of such a table, which looks the entry up by
its ``name`` and validates the table against that entry's schema. Names registered later
(plugins) are accepted as soon as they are registered, and an unknown name's error lists
every registered one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    SerializeAsAny,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = ["PLUGIN_GROUP", "Registry", "Schema", "load_plugins", "named_schema", "registered"]

T = TypeVar("T")
F = TypeVar("F")
PLUGIN_GROUP = "qnnlab.plugins"


class Schema(BaseModel):
    """A config table: unknown keys are errors, values are immutable (and hashable), nothing is coerced (strict:
    ``true`` or ``"0.5"`` is no number; an array may stand for a tuple), every float is finite and every
    integer fits in 64 bits (as torch's sizes and seeds must)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _int64(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise PydanticCustomError("int64", "Input should be a 64-bit integer (below 2**63 in size)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _arrays_as_tuples(cls, data: Any) -> Any:
        """A TOML or JSON array for a tuple field (strict mode takes only a tuple)."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            k: tuple(v)
            if isinstance(v, list)
            and k in fields
            and any(get_origin(t) is tuple for t in (fields[k].annotation, *get_args(fields[k].annotation)))
            else v
            for k, v in data.items()
        }


class Registry(Generic[T]):
    """Named entries of one kind (methods, presets, data sets, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, entry: Callable[[F], T]) -> Callable[[F], F]:
        """A decorator that registers ``entry(f)`` under ``name`` and returns ``f`` unchanged."""

        def register(f: F) -> F:
            self.register(name, entry(f))
            return f

        return register

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}") from None

    def names(self, *, sort: bool = True) -> list[str]:
        """Every registered name, sorted (or in registration order)."""
        return sorted(self._entries) if sort else list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


S = TypeVar("S", bound=Schema)


def named_schema(base: type[S], name: str, config: type[S] | None = None) -> type[S]:
    """The schema of entry ``name``: ``config``, which must declare ``name: Literal[name] = name``,
    or (``None``) a subclass of ``base`` that adds only that."""
    if config is None:
        return create_model(
            f"{name.title().replace('_', '')}{base.__name__}", __base__=base, name=(Literal[name], name)
        )
    if not issubclass(config, base) or config.model_fields["name"].default != name:
        raise TypeError(
            f"{config.__name__} must subclass {base.__name__} and declare name: Literal[{name!r}] = {name!r}"
        )
    return config


def registered(registry: Registry[Any], base: type[Schema], *, optional: bool = False) -> Any:
    """The pydantic type of a table validated against ``registry.get(table["name"]).config``.

    An instance of the named entry's schema passes as it is; an unknown or missing ``name``
    fails with the registered names in registration order. Tables dump with their own fields.
    ``optional``: ``None`` is valid too.
    """

    def validate(value: Any) -> Schema | None:
        if value is None and optional:
            return None
        name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
        if name not in registry:
            expected = ", ".join(repr(n) for n in registry.names(sort=False))
            if name is None:
                raise PydanticCustomError("missing", "name is required; choose from: {names}", {"names": expected})
            raise PydanticCustomError(
                "union_tag_invalid",
                "Input tag '{tag}' found using 'name' does not match any of the expected tags: {expected_tags}",
                {"tag": name, "expected_tags": expected},
            )
        schema = registry.get(name).config
        return value if isinstance(value, schema) else schema.model_validate(value)

    kind = SerializeAsAny[base] | None if optional else SerializeAsAny[base]
    return Annotated[kind, PlainValidator(validate)]


_plugins_loaded = False


def load_plugins() -> None:
    """Import every module advertised in the ``qnnlab.plugins`` entry-point group, once.

    A package that registers data sets, models or methods on import declares, in its
    ``pyproject.toml``, ``[project.entry-points."qnnlab.plugins"] NAME = "package.module"``;
    configs naming its entries then validate in any process, the ``qnnlab`` command included.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()
