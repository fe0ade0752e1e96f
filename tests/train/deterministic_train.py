"""train.py with deterministic GPU kernels, the program of test_cuda_runs.py's bitwise CUDA resume: cuDNN's
deterministic algorithms and ``torch.use_deterministic_algorithms`` (a warning where an operation has none), so that
two runs from the same state can give the same bits (atomics in weight gradients would not). Same command line as
train.py."""
import os
import runpy
import sys

os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # cuBLAS's deterministic mode, read when it starts
import torch  # noqa: E402

TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'train.py')

if __name__ == '__main__':
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    sys.argv[0] = TRAIN_PY
    runpy.run_path(TRAIN_PY, run_name='__main__')
