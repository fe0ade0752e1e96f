"""What the entry points check in an option file as soon as it is read, beyond ``basicsr.utils.options.validate``:
every ``type:`` name against its registry, and every ``val:metrics`` entry (type and keyword arguments), so that a
typo stops the run before any work instead of at the first validation thousands of iterations later; and the keys
that only another model class reads (declared in the classes' ``OPTION_KEYS``: ``network_d`` with
``model_type: ImageRestorationModel`` would train without its discriminator).

``basicsr.utils.options`` knows nothing of the registries' contents; this module, above it, hands them over:
``parse_options(is_train, registries=OPTION_CHECKS)``.
"""
from basicsr.data.batch_augment import check_batch_augment
from basicsr.metrics import check_metric_opt
from basicsr.utils.lr_scheduler import SCHEDULER_REGISTRY
from basicsr.utils.options import OptionError, check_declared_keys
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, OPTIMIZER_REGISTRY


def _batch_augment(value, key_path):
    try:
        check_batch_augment(value, key_path)
    except ValueError as err:
        raise OptionError(str(err)) from None


def _model_keys(opt, key_path):
    check_declared_keys(opt, MODEL_REGISTRY, 'model_type')


OPTION_CHECKS = {
    'model_type': MODEL_REGISTRY,
    'network_g:type': ARCH_REGISTRY,
    'network_d:type': ARCH_REGISTRY,
    'datasets:*:type': DATASET_REGISTRY,
    'train:pixel_opt:type': LOSS_REGISTRY,
    'train:freq_opt:type': LOSS_REGISTRY,
    'train:perceptual_opt:type': LOSS_REGISTRY,
    'train:gan_opt:type': LOSS_REGISTRY,
    'train:photometric_opt:type': LOSS_REGISTRY,
    'train:cycle_opt:type': LOSS_REGISTRY,
    'train:smoothness_opt:type': LOSS_REGISTRY,
    'train:consistency_opt:type': LOSS_REGISTRY,
    'train:optim_g:type': OPTIMIZER_REGISTRY,
    'train:optim_d:type': OPTIMIZER_REGISTRY,
    'train:scheduler:type': SCHEDULER_REGISTRY,
    'val:metrics:*': check_metric_opt,
    'train:batch_augment': _batch_augment,
    '': _model_keys,  # the whole options, after model_type is known to be registered
}
