"""Local web demo: upload a stereo pair, super-resolve it, compare with bicubic, download both views.

    python demo.py                       # every zoo model whose weights are in experiments/pretrained_models/
    python demo.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml --weights experiments/<name>/models/net_g_latest.pth
    python demo.py --arch NAFSSR-T --scale 4 --weights my_weights.pth --port 7861

Then open http://127.0.0.1:7860 (``--host``/``--port``). See docs/demo.md.
"""
import sys

from basicsr.demo_app import main

if __name__ == '__main__':
    sys.exit(main())
