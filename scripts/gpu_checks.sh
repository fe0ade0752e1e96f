#!/usr/bin/env bash
# The CUDA checks and the GPU table of docs/benchmarks.md, in one run on a machine with one NVIDIA GPU:
#
#   bash scripts/gpu_checks.sh [OUT_DIR] [TOTAL_S] [RELEASE_PATH]
#
# TOTAL_S (default 600): the benchmark starts no new measurement after that many seconds of the whole run
# (minus a margin for the one in flight), so a time-limited machine still returns every finished row.
#
# 1. the quick start trained on the GPU under fp16 autocast with gradient scaling (train.py's CUDA path), which
#    must still beat bicubic; 2. test.py on the GPU (bf16 autocast, self-ensemble) and the strip inference script
#    (fp16) on the quick-start model; 3. the sync-free training step and the CUDA prefetcher (issue 20): no
#    synchronising CUDA call in ten steady-state iterations fed by the CUDA prefetcher (fp32, bf16, fp16 with
#    scaling; and the GAN model's step), the device-side skip of a NaN step equal to the host-side one, the prefetcher's batch order across
#    epochs and a mid-epoch resume; 4. the CUDA random state in a resume: a GPU run SIGKILLed after a state and
#    started again ends bit for bit as an uninterrupted one (tests/train/test_cuda_runs.py); 5. NCCL start-up:
#    train.py under torchrun with one process per GPU, one and (on a machine with two GPUs; skipped with its reason
#    on one) two; 6. scripts/benchmark_gpu.py (T/S/B/L x4: fp32, bf16, channels-first, compile, and the released
#    architecture side by side when RELEASE_PATH holds a scratch copy of it).
# Each step's log goes to OUT_DIR; a failing step is reported and the next one still runs.
set -u
OUT_DIR=${1:-gpu_checks_out}
TOTAL=${2:-600}
RELEASE=${3:-}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, keep the log, print its tail
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc in $((SECONDS - t0)) s"
    tail -n 6 "$OUT_DIR/$name.log"
    [ $rc -eq 0 ] || status=1
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
        torch.backends.cudnn.version(), torch.cuda.get_device_name())'

rm -rf experiments/quickstart_NAFSSR_x4 results/quickstart_NAFSSR_x4 tb_logger/quickstart_NAFSSR_x4
step quickstart_cuda_fp16 240 $PY scripts/quickstart.py --force_yml num_gpu=1 train:use_amp=true train:amp_dtype=fp16

cat >"$OUT_DIR/test_sample.yml" <<'EOF'
name: gpu_check_test
scale: 4
num_gpu: 1
datasets:
  test0:
    name: Motorcycle
    type: PairedStereoImageDataset
    dataroot_gt: datasets/sample/test/Motorcycle/hr
    dataroot_lq: datasets/sample/test/Motorcycle/lr_x4
    io_backend: {type: disk}
network_g: {type: NAFSSR, up_scale: 4, width: 24, num_blks: 4, train_size: [1, 6, 16, 48]}
path:
  pretrain_network_g: experiments/quickstart_NAFSSR_x4/models/net_g_1500.pth
val:
  save_img: true
  self_ensemble: true
  amp_dtype: bf16
  metrics:
    psnr: {type: calculate_psnr, crop_border: 0, test_y_channel: false}
    ssim: {type: calculate_skimage_ssim}
EOF
step test_cuda_bf16 120 $PY test.py -opt "$OUT_DIR/test_sample.yml"
step inference_cuda_fp16 120 $PY scripts/inference_stereo.py --opt "$OUT_DIR/test_sample.yml" \
    --left datasets/sample/test/Motorcycle/lr_x4/motorcycle_bottom/lr0.png \
    --right datasets/sample/test/Motorcycle/lr_x4/motorcycle_bottom/lr1.png \
    --output "$OUT_DIR/inference" --strip_rows 16 --amp fp16

step sync_free_step_cuda 180 $PY -m pytest -q -rs -p no:cacheprovider tests/train/test_step_on_device.py \
    tests/train/test_step_guard.py tests/train/test_prefetcher.py \
    tests/train/test_gan_sync_free_step.py::test_gan_steady_state_on_cuda_makes_no_synchronising_call
step cuda_rng_resume 240 $PY -m pytest -q -rs -p no:cacheprovider \
    tests/train/test_cuda_runs.py::test_cuda_sigkill_then_rerun_equals_uninterrupted
step nccl_torchrun 180 $PY -m pytest -q -rs -p no:cacheprovider \
    tests/train/test_cuda_runs.py::test_nccl_start_up_under_torchrun

BUDGET=$((TOTAL - SECONDS - 90))
step benchmark_gpu $((BUDGET + 90)) $PY scripts/benchmark_gpu.py --out "$OUT_DIR/benchmark_gpu.jsonl" \
    --budget "$BUDGET" --timeout 150 ${RELEASE:+--release_path "$RELEASE"}
tail -n 60 "$OUT_DIR/benchmark_gpu.log"
exit $status
