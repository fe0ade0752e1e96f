"""Counting, per training iteration, what makes a GPU training step wait: host reads of tensor values and explicit
torch.distributed collectives (issue 20). Used in-process by test_sync_free_step.py and, as a script, as the
program of each torchrun process:

    python -m torch.distributed.run --nproc_per_node=2 host_sync_counter.py OUT_DIR FIRST LAST -opt X.yml \
        --launcher pytorch

writes ``OUT_DIR/rank<r>.json``: ``{'events': {iteration: [what, ...]}, 'weights': [sum of each parameter of net_g]}``
(and ``'weights_d'``, net_d's, for a GAN).
With ``NAN_AT=<rank>:<iteration>`` in the environment, the loss of that process is +inf at that iteration while its
gradients stay finite (the case only the guard's poisoning tells the other processes about); ``NAN_D_AT`` likewise
for a GAN discriminator's loss on real images.

A host read is an aten op that returns a Python value (``_local_scalar_dense`` behind ``.item()``, ``bool()``,
``float()``; ``is_nonzero``; ``equal``) or whose output size depends on tensor values (``nonzero``,
``masked_select``): on a GPU each one waits for every kernel queued before it. On the CPU every tensor is a host
tensor, so two reads that stay on the host when training on a GPU are told apart and reported separately:
the optimizer's step counters (torch keeps them on the CPU unless the optimizer is capturable or fused) and
DropPath's draw (``torch.rand(())`` on the CPU generator decides whether a block runs, as in the release).
Collectives are counted by wrapping the functions of ``torch.distributed`` that the code calls; the gradient
all-reduce of DistributedDataParallel runs inside its C++ reducer and is not counted (it is the one collective a
step needs).
"""
import collections
import json
import os
import sys

import torch
from torch import distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

HOST_READS = {'aten::_local_scalar_dense', 'aten::is_nonzero', 'aten::item', 'aten::equal', 'aten::nonzero',
              'aten::masked_select'}
COLLECTIVES = ('all_reduce', 'all_gather', 'all_gather_object', 'all_gather_into_tensor', 'broadcast',
               'broadcast_object_list', 'reduce', 'reduce_scatter', 'reduce_scatter_tensor', 'all_to_all', 'gather',
               'scatter', 'barrier', 'monitored_barrier', 'send', 'recv', 'isend', 'irecv', '_broadcast_coalesced',
               'all_reduce_coalesced')


class StepCounter(TorchDispatchMode):
    """Records host reads and collectives of iterations ``first..last`` (an iteration starts with its
    ``update_learning_rate`` call and ends with the next one; the dispatch mode is on only meanwhile)."""

    def __init__(self, first, last):
        super().__init__()
        self.first, self.last = first, last
        self.active = False
        self.iteration = 0
        self.model = None
        self.events = collections.defaultdict(list)
        self._step_ids = set()
        self._drop_path_code = None

    # ------------------------------------------------------------------ hooks
    def install(self, monkeypatch=None):
        """Mark iterations through ``BaseModel.update_learning_rate`` (the first call of every iteration) and wrap
        the collectives; with ``monkeypatch`` (pytest) everything is undone after the test."""
        from basicsr.models.archs.nafssr_arch import DropPath
        from basicsr.models.base_model import BaseModel

        self._drop_path_code = DropPath.forward.__code__
        setter = monkeypatch.setattr if monkeypatch is not None else setattr
        original = BaseModel.update_learning_rate
        counter = self

        def update_learning_rate(model, current_iter):
            if current_iter == counter.first:
                counter.__enter__()
                counter.active = True
            elif current_iter == counter.last + 1:
                counter.close()
            counter.iteration, counter.model = int(current_iter), model
            counter._step_ids = {id(s['step']) for opt in model.optimizers for s in opt.state.values()
                                 if torch.is_tensor(s.get('step'))}
            return original(model, current_iter)

        setter(BaseModel, 'update_learning_rate', update_learning_rate)
        for name in COLLECTIVES:
            func = getattr(dist, name, None)
            if func is not None:
                setter(dist, name, self._counted(name, func))

    def close(self):
        """Leave the dispatch mode (at iteration ``last + 1``, or after a run that ended meanwhile)."""
        if self.active:
            self.__exit__(None, None, None)
            self.active = False

    def _counted(self, name, func):
        def wrapper(*args, **kwargs):
            if self.first <= self.iteration <= self.last:
                self.events[self.iteration].append(f'collective {name}')
            return func(*args, **kwargs)
        return wrapper

    # ------------------------------------------------------------------ dispatch
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in HOST_READS:
            self.events[self.iteration].append(self._describe(name, args))
        return func(*args, **(kwargs or {}))

    def _describe(self, name, args):
        if args and torch.is_tensor(args[0]) and id(args[0]) in self._step_ids:
            return f'host {name} optimizer step counter'
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code is self._drop_path_code:
                return f'host {name} DropPath draw'
            frame = frame.f_back
        return f'{name} at {self._caller()}'

    @staticmethod
    def _caller():
        """The innermost frame of this project's code (outside torch and this file) and the innermost frame."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        frame, innermost = sys._getframe(3), None
        while frame is not None:
            path = frame.f_code.co_filename
            if innermost is None and not any(part in path for part in ('_dynamo', '_compile.py', 'python_dispatch')):
                innermost = f'{os.path.basename(path)}:{frame.f_lineno} ({frame.f_code.co_name})'
            if path.startswith(root) and 'site-packages' not in path and not path.endswith(__file__):
                return f'{os.path.relpath(path, root)}:{frame.f_lineno} ({frame.f_code.co_name}) via {innermost}'
            frame = frame.f_back
        return f'? via {innermost}'

    def device_waits(self, first, last):
        """``{iteration: [...]}`` of what would make a GPU step wait, iterations first..last."""
        return device_waits({str(k): v for k, v in self.events.items()}, first, last)


def device_waits(events, first, last):
    """``{iteration: [...]}`` of ``events`` (keys: str(iteration)) that would make a GPU step wait."""
    return {it: [e for e in events.get(str(it), []) if not e.startswith('host ')] for it in range(first, last + 1)}


def nan_loss_at(rank, iteration, counter):
    """Make the loss of process ``rank`` +inf at ``iteration``, its gradients unchanged (the other processes' losses
    stay finite)."""
    from basicsr.models.image_restoration_model import ImageRestorationModel

    original = ImageRestorationModel.restoration_losses

    def restoration_losses(model, preds, gt, **kwargs):
        losses, total = original(model, preds, gt, **kwargs)
        if model.rank == rank and counter.iteration == iteration:
            total = total + float('inf')
        return losses, total

    ImageRestorationModel.restoration_losses = restoration_losses


def nan_d_loss_at(rank, iteration, counter):
    """Make the discriminator's loss on real images of process ``rank`` +inf at ``iteration`` (a GAN), its
    gradients unchanged."""
    from basicsr.losses.gan_loss import GANLoss

    original = GANLoss.forward

    def forward(loss, pred, target_is_real, is_disc=False):
        value = original(loss, pred, target_is_real, is_disc=is_disc)
        if is_disc and target_is_real and counter.model.rank == rank and counter.iteration == iteration:
            value = value + float('inf')
        return value

    GANLoss.forward = forward


def main(out_dir, first, last, argv):
    import train

    counter = StepCounter(int(first), int(last))
    counter.install()
    if os.environ.get('NAN_AT'):
        nan_loss_at(*map(int, os.environ['NAN_AT'].split(':')), counter)
    if os.environ.get('NAN_D_AT'):
        nan_d_loss_at(*map(int, os.environ['NAN_D_AT'].split(':')), counter)
    try:
        train.run(argv)
    finally:
        counter.close()
    rank = int(os.environ.get('RANK', 0))
    weights = {key: [float(p.detach().double().sum()) for p in getattr(counter.model, net).parameters()]
               for key, net in (('weights', 'net_g'), ('weights_d', 'net_d')) if hasattr(counter.model, net)}
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump({'events': {str(k): v for k, v in counter.events.items()}, **weights}, f)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
