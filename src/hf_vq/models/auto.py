"""Registration of every hf_vq config / model / image processor with the transformers Auto classes.

One table, one function: a new model adds its line to ``TOKENIZER_CLASSES`` or
``GENERATOR_CLASSES``, and ``register_auto_classes()`` (called once by ``import hf_vq``,
idempotent) does the rest.

Registering must not cost ``import hf_vq`` the import of torch and transformers' model
code (``hf-vq --help`` and ``import hf_vq`` stay fast), so each Auto class is filled when
transformers' own module for it finishes loading: ``AutoConfig`` with our config classes,
``AutoModel`` with stand-ins that import the model class on first use, and
``AutoImageProcessor`` with ``VQImageProcessor``. Already loaded modules are filled at once.
"""

import importlib
import importlib.abc
import sys
import warnings

# model_type -> (module, config class, model class); the module exports both names.
TOKENIZER_CLASSES = {
    "vqvae": ("hf_vq.models.vqvae", "VQVAEConfig", "VQVAEModel"),
    "fsq_vae": ("hf_vq.models.fsq_vae", "FSQVAEConfig", "FSQVAEModel"),
    "simvq_vae": ("hf_vq.models.simvq_vae", "SimVQVAEConfig", "SimVQVAEModel"),
    "lfq_vae": ("hf_vq.models.lfq_vae", "LFQVAEConfig", "LFQVAEModel"),
    "cvq_vae": ("hf_vq.models.cvq_vae", "CVQVAEConfig", "CVQVAEModel"),
    "ibq_vae": ("hf_vq.models.ibq_vae", "IBQVAEConfig", "IBQVAEModel"),
    "vqgan": ("hf_vq.models.vqgan", "VQGANConfig", "VQGANModel"),
    "llamagen_vq": ("hf_vq.models.llamagen_vq", "LlamaGenVQConfig", "LlamaGenVQModel"),
    "vqgan_lc": ("hf_vq.models.vqgan_lc", "VQGANLCConfig", "VQGANLCModel"),
    "vqgan_fsq": ("hf_vq.models.vqgan_fsq", "VQGANFSQConfig", "VQGANFSQModel"),
    "vqgan_cvq": ("hf_vq.models.vqgan_cvq", "VQGANCVQConfig", "VQGANCVQModel"),
    "titok": ("hf_vq.models.titok", "TiTokConfig", "TiTokModel"),
    "vq_cluster": ("hf_vq.models.vq_cluster", "VQClusterConfig", "VQClusterModel"),
    "maskgit_vqgan": ("hf_vq.models.maskgit_vqgan", "MaskGITVQGANConfig", "MaskGITVQGANModel"),
    "vqkd": ("hf_vq.models.vqkd", "VQKDConfig", "VQKDModel"),
}
# Autoregressive models over tokenizer indices: AutoConfig / AutoModel only (no image processor).
GENERATOR_CLASSES = {
    "llamagen_gpt": ("hf_vq.models.llamagen_gpt", "LlamaGenGPTConfig", "LlamaGenGPTModel"),
}
AUTO_MODULES = {
    "config": "transformers.models.auto.configuration_auto",
    "model": "transformers.models.auto.modeling_auto",
    "image_processor": "transformers.models.auto.image_processing_auto",
}


def _class(module: str, name: str):
    return getattr(importlib.import_module(module), name)


def config_class(model_type: str):
    module, config_name, _ = {**TOKENIZER_CLASSES, **GENERATOR_CLASSES}[model_type]
    return _class(module, config_name)


class LazyModelClass:
    """Stands in for a model class in ``AutoModel``'s table and imports it on first use.

    ``AutoModel`` reads ``config_class`` at registration and then calls ``from_pretrained`` /
    ``_from_config``; every attribute but the two set here comes from the real class.
    """

    def __init__(self, module: str, name: str, config_class):
        self._module = module
        self.__name__ = self.__qualname__ = name
        self.config_class = config_class

    def load(self):
        return _class(self._module, self.__name__)

    def __getattr__(self, attribute: str):
        return getattr(self.load(), attribute)

    def __call__(self, *args, **kwargs):
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<hf_vq lazy {self._module}.{self.__name__}>"


def _register_configs(_module=None) -> None:
    from transformers import AutoConfig

    for model_type in {**TOKENIZER_CLASSES, **GENERATOR_CLASSES}:
        AutoConfig.register(model_type, config_class(model_type), exist_ok=True)


def _register_models(_module=None) -> None:
    from transformers import AutoModel

    for model_type, (module, _, model_name) in {**TOKENIZER_CLASSES, **GENERATOR_CLASSES}.items():
        configuration = config_class(model_type)
        AutoModel.register(configuration, LazyModelClass(module, model_name, configuration), exist_ok=True)


def _register_image_processors(_module=None) -> None:
    from transformers import AutoImageProcessor

    from ..processing import VQImageProcessor

    # One class for both backends: it works on PIL/numpy and needs no torchvision.
    processors = {"pil": VQImageProcessor, "torchvision": VQImageProcessor}
    for model_type in TOKENIZER_CLASSES:
        AutoImageProcessor.register(config_class(model_type), image_processor_classes=processors, exist_ok=True)


_REGISTER = {"config": _register_configs, "model": _register_models, "image_processor": _register_image_processors}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a callback right after a given module has executed (once), whoever imports it."""

    def __init__(self):
        self.callbacks = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _CallbackLoader(spec.loader, self.callbacks.pop(fullname))
        return spec


class _CallbackLoader(importlib.abc.Loader):
    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader (resources, reloading).
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        try:
            self.callback(module)
        except Exception as error:  # a failed registration must not break transformers' import
            warnings.warn(f"hf_vq could not register its models with {module.__name__}: {error!r}", stacklevel=2)


_AFTER_IMPORT = _AfterImport()


def register_auto_classes() -> None:
    """Register every hf_vq model with ``AutoConfig``, ``AutoModel`` and ``AutoImageProcessor`` (idempotent)."""
    for kind, module_name in AUTO_MODULES.items():
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, "__spec__", None) is not None and not getattr(
            module.__spec__, "_initializing", False
        ):
            _REGISTER[kind]()
        else:
            _AFTER_IMPORT.callbacks[module_name] = _REGISTER[kind]
    if _AFTER_IMPORT.callbacks and _AFTER_IMPORT not in sys.meta_path:
        sys.meta_path.insert(0, _AFTER_IMPORT)


def __getattr__(name: str):
    # TOKENIZERS / GENERATORS: model_type -> (config class, model class), importing the classes.
    if name in ("TOKENIZERS", "GENERATORS"):
        table = TOKENIZER_CLASSES if name == "TOKENIZERS" else GENERATOR_CLASSES
        return {model_type: (_class(module, config), _class(module, model)) for model_type, (module, config, model) in table.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GENERATOR_CLASSES", "TOKENIZER_CLASSES", "LazyModelClass", "register_auto_classes"]
