from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)
