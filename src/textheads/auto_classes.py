"""`import textheads` lets `AutoConfig`/`AutoModel.from_pretrained` open textheads model
directories, without importing transformers (and torch) itself.

transformers offers no plugin hook, and importing it costs seconds that `textheads --help`
must not pay. So `install()` (called by `textheads/__init__.py`) registers at once with
the auto classes already imported, and for the others puts a finder on `sys.meta_path`
that waits for their module's first import and registers right after it runs (then
leaves).

That moment can fall in the middle of another import (transformers' or textheads' own),
so it imports only the config class, whose module imports no auto class; `AutoModel` gets
`_TextHeadsModelOnDemand`, which imports the model class when a model is built, and
`textheads.model` registers the model class itself once imported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

_CONFIG_AUTO = "transformers.models.auto.configuration_auto"
_MODEL_AUTO = "transformers.models.auto.modeling_auto"


def _register_config(configuration_auto: ModuleType) -> None:
    from textheads.model_config import TextHeadsConfig

    configuration_auto.AutoConfig.register("textheads", TextHeadsConfig, exist_ok=True)


class _TextHeadsModelOnDemand:
    """`TextHeadsModel` in `AutoModel`'s registry until `textheads.model` is imported: the
    two ways `AutoModel` builds a model, passed on to the real class."""

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        from textheads.model import TextHeadsModel

        return TextHeadsModel.from_pretrained(*args, **kwargs)

    @classmethod
    def _from_config(cls, *args: Any, **kwargs: Any) -> Any:
        from textheads.model import TextHeadsModel

        return TextHeadsModel._from_config(*args, **kwargs)


def _register_model(modeling_auto: ModuleType) -> None:
    from textheads.model_config import TextHeadsConfig

    if "textheads.model" not in sys.modules:  # else it registers (or has registered) the real class
        modeling_auto.AutoModel.register(TextHeadsConfig, _TextHeadsModelOnDemand, exist_ok=True)


_REGISTER: dict[str, Callable[[ModuleType], None]] = {_CONFIG_AUTO: _register_config, _MODEL_AUTO: _register_model}


def _register(name: str, module: ModuleType) -> None:
    try:
        _REGISTER[name](module)
    except ImportError:
        # Not expected (the config's module imports no auto class); should it happen, the
        # classes are registered when `textheads.model` is imported, as without this hook.
        pass


class _RegisterAfterImport:
    """A finder on `sys.meta_path` (importlib's `MetaPathFinder` protocol; not subclassed, as
    importing `importlib.abc` would double the cost of `import textheads`) that finds nothing
    itself: it wraps the loading of the watched modules to register after it."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        self.names.discard(fullname)
        if not self.names and self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _register(fullname, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Register with the auto classes imported already; watch for the others."""
    if any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        return
    waiting = set()
    for name in (_CONFIG_AUTO, _MODEL_AUTO):
        module = sys.modules.get(name)
        if module is None:
            waiting.add(name)
        else:
            _register(name, module)
    if waiting:
        sys.meta_path.insert(0, _RegisterAfterImport(waiting))
