"""What the entry points check in an option file as soon as it is read, beyond ``basicsr.utils.options.validate``:
every ``type:`` name against its registry, and every ``val:metrics`` entry (type and keyword arguments), so that a
typo stops the run before any work instead of at the first validation thousands of iterations later; and the keys
that only another model class reads (declared in the classes' ``OPTION_KEYS``: ``network_d`` with
``model_type: ImageRestorationModel`` would train without its discriminator). The entries checked are derived from
those declarations: every declared network, optimizer, schedule and loss has its ``type:`` checked.

``basicsr.utils.options`` knows nothing of the registries' contents; this module, above it, hands them over:
``parse_options(is_train, registries=OPTION_CHECKS)``.
"""
import basicsr.models  # noqa: F401  (registers the model classes, whose declared keys are checked here)
from basicsr.data import LOADER_KEYS
from basicsr.data.batch_augment import check_batch_augment
from basicsr.metrics import check_metric_opt
from basicsr.utils.lr_scheduler import SCHEDULER_REGISTRY
from basicsr.utils.options import OptionError, check_declared_keys, declared_keys
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, OPTIMIZER_REGISTRY


def _batch_augment(value, key_path):
    try:
        check_batch_augment(value, key_path)
    except ValueError as err:
        raise OptionError(str(err)) from None


def _dataset_keys(dataset_opt, key_path):
    """A ``datasets:<phase>`` entry's keys against its dataset class's arguments and the loader's keys, as
    ``build_dataset`` will check them (``parse`` fills in phase, name and scale after this check)."""
    if isinstance(dataset_opt, dict) and dataset_opt.get('type') in DATASET_REGISTRY:
        DATASET_REGISTRY.resolve(dataset_opt, key_path, meta_keys=LOADER_KEYS, phase=None, name=None, scale=None,
                                 key_path=None)


def _model_keys(opt, key_path):
    check_declared_keys(opt, MODEL_REGISTRY, 'model_type')


def _entry_registry(key_path):
    """The registry of the entries at a declared key path, by BasicSR's names: ``network_*`` a network,
    ``train:optim_*`` an optimizer, ``train:scheduler`` a schedule, ``train:*_opt`` a loss."""
    section, _, key = key_path.rpartition(':')
    if not section and key.startswith('network_'):
        return ARCH_REGISTRY
    if section == 'train' and key.startswith('optim_'):
        return OPTIMIZER_REGISTRY
    if section == 'train' and key == 'scheduler':
        return SCHEDULER_REGISTRY
    if section == 'train' and key.endswith('_opt'):
        return LOSS_REGISTRY
    return None


# the type: of every entry a model class declares (OPTION_KEYS), checked against the registry of its kind
_DECLARED = sorted({key for name in MODEL_REGISTRY for key in declared_keys(MODEL_REGISTRY.get(name))})
OPTION_CHECKS = {
    'model_type': MODEL_REGISTRY,
    'datasets:*:type': DATASET_REGISTRY,
    'datasets:*': _dataset_keys,
    **{f'{key}:type': _entry_registry(key) for key in _DECLARED if _entry_registry(key)},
    'val:metrics:*': check_metric_opt,
    'train:batch_augment': _batch_augment,
    '': _model_keys,  # the whole options, after model_type is known to be registered
}
