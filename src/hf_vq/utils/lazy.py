"""PEP 562 lazy attributes for package ``__init__`` files.

A package lists what it exports and the submodule that defines each name; the submodule
is imported on first access (and the name cached in the package). ``import hf_vq`` then
costs no torch, transformers model code, diffusers or datasets until a name that needs
them is used.
"""

import importlib


def lazy_exports(namespace: dict, exports: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for the package whose globals are ``namespace``.

    ``exports`` maps each public name to the submodule (relative, e.g. ``".vqvae"``) that defines it.
    """
    package = namespace["__name__"]

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__


__all__ = ["lazy_exports"]
