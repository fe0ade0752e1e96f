from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)


def build_model(opt):
    """Build the model named by ``opt['model_type']`` (default ImageRestorationModel) from parsed options."""
    from basicsr.utils.registry import MODEL_REGISTRY

    return MODEL_REGISTRY.get(opt.get('model_type', 'ImageRestorationModel'), key_path='model_type')(opt)
