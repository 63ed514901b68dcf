#!/usr/bin/env bash
# The engine on a GPU, from the repository root of the device machine:
#   bash scripts/device/engine.sh     (device tool: timeout_s 590, carry ["third_party/debian"])
# Where scripts/device/check.sh builds the raw kernels alone, this builds libdit itself against
# the machine's CUDA PyTorch (DESIGN.md "Two torch worlds": header-only packages and libpng from
# third_party/debian, made here by scripts/vendor-deps.sh; no HDF5, docking or batch jobs there),
# so the "cuda" kernel backend (kernels/cuda/torch_bridge.cpp) is in, and runs in order of
# importance (the kernel benchmarks last: check.sh runs them too), each with its own time limit:
#   test_kernels                         the shared test bodies on every backend, cuda included
#                                        (bf16 and fp16 against float64), whole-model bf16 parity
#   test_model                           the model tests; Placement.SamplingOnTheGpuMatchesTheCpu
#                                        (sample_flow on cuda, fp32 and bf16, against the CPU)
#   no_filesystem                        test_runtime (std::filesystem interposed) and the nm scan
#                                        of every built binary: nothing binds to the wheel's
#                                        std::filesystem copies (pytorch#133437)
#   sample                               dit image sample --device cuda (fp32, bf16) and cpu:
#                                        64 images, 50 steps, --timings
#   forward (dit-bench, DiT-XL/2, bf16)  engine (forward and CUDA-graph replay) vs PyTorch eager,
#                                        batch 1, 64, 256
#   compiled                             the same with torch.compile too (compiles per batch)
#   kernel_bench (dit-cuda-selftest)     our attention kernels: TFLOP/s per configuration
#   sdpa (bench_sdpa.py)                 PyTorch SDPA (flash, cuDNN) at the same shapes
# Logs in $LOG/<step>.log, one line per step in summary.txt (see collect below).
# Arguments name the steps to run after the build (default: all, in that order), e.g. a
# second call on a still-warm machine: `bash scripts/device/engine.sh forward` (the build is
# then a no-op: build-gpu is kept between calls).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source scripts/device/common.sh
python=$(command -v python3)
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)') || exit 1
torch_version=$("$python" -c 'import torch; print(torch.__version__)')
# ATen wants C++20 from torch 2.12 on.
cxx_std=$("$python" -c 'import torch; v = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]); print(20 if v >= (2, 12) else 17)')
{
  nvidia-smi
  nvcc --version
  cmake --version | head -1
  echo "torch $torch_version at $torch_prefix; C++$cxx_std"
} >"$LOG/environment.txt" 2>&1
[ -d third_party/debian ] ||
  echo "== warning: third_party/debian is missing (run scripts/vendor-deps.sh here and carry it)" |
  tee -a "$summary"

arch=$(gpu_arch)

step configure 120 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$torch_prefix" "-DCMAKE_CUDA_ARCHITECTURES=$arch" \
  "-DCMAKE_CXX_STANDARD=$cxx_std" -DDIT_WITH_HDF5=OFF -DDIT_WITH_DOCKING=OFF \
  -DDIT_PCH=OFF -DDIT_UNITY_BUILD=OFF -DDIT_WITH_CUDA_KERNELS=ON || exit 1
grep -q '"cuda" kernel backend' "$LOG/configure.log" ||
  echo "== warning: configure did not report the cuda kernel backend" | tee -a "$summary"
step build 300 cmake --build build-gpu -j "$(nproc)" \
  --target dit dit_cli dit-bench test_kernels test_model test_runtime test_image dit-cuda-selftest || exit 1

run_step() {
  case $1 in
    test_kernels)
      step test_kernels 180 build-gpu/tests/test_kernels \
        --gtest_output="json:$LOG/test_kernels.json" ;;
    test_model)
      step test_model 180 build-gpu/tests/test_model --gtest_output="json:$LOG/test_model.json" ;;
    no_filesystem)
      step no_filesystem 120 bash -c "build-gpu/tests/test_runtime && bash tests/runtime/no_std_filesystem.sh \
        build-gpu/libdit.so build-gpu/dit build-gpu/dit-bench build-gpu/tests/test_kernels \
        build-gpu/tests/test_model build-gpu/tests/test_runtime" ;;
    sample)
      step sample 240 bash -c "for d in 'cuda fp32' 'cuda bf16' 'cpu fp32'; do set -- \$d; \
        echo \"== --device \$1 --dtype \$2\"; build-gpu/dit image sample --device \$1 --dtype \$2 \
        -b 64 --steps 50 --timings -o $LOG/sample_\$1_\$2.png || exit 1; done" ;;
    vae)  # the SD VAE's CUDA parity test (Vae.CudaMatchesPyTorch) and the rest of its suite
      step vae 120 build-gpu/tests/test_image --gtest_filter='Vae.*' --gtest_output="json:$LOG/vae.json" ;;
    published)  # a DiT-XL/2 256x256 in the published .pt format (random weights): one image,
      # DDIM 50 steps, CFG 4, bf16, then 8 images; docs/official-checkpoints.md
      step published 300 bash -c "\"$python\" scripts/make-random-dit-pt.py /tmp/DiT-XL-2-256x256.pt && \
        for b in 1 8; do build-gpu/dit image sample -m /tmp/DiT-XL-2-256x256.pt --device cuda \
        --dtype bf16 --sampler ddim --steps 50 --cfg-scale 4 --class 207 -b \$b --timings -o '' \
        --latent-out $LOG/published_\$b.safetensors || exit 1; done; rm -f /tmp/DiT-XL-2-256x256.pt" ;;
    kernel_bench)
      step kernel_bench 90 build-gpu/kernels/cuda/dit-cuda-selftest bench --json "$LOG/bench.json" ;;
    sdpa)
      step sdpa 120 "$python" scripts/device/bench_sdpa.py ;;
    forward)
      step forward 240 build-gpu/dit-bench forward --config XL/2 --device cuda --dtype bf16 \
        --batch 1,64,256 --inference --cuda-graph --python "$python" \
        --warmup 3 --min-time 1 --json "$LOG/forward_xl2.json" ;;
    compiled)  # torch.compile compiles once per batch size: the target's batch 64 first
      step compiled 300 build-gpu/dit-bench forward --config XL/2 --device cuda --dtype bf16 \
        --batch 64,1,256 --inference --cuda-graph --compile --python "$python" \
        --warmup 3 --min-time 1 --json "$LOG/forward_xl2_compiled.json" ;;
    *)
      echo "== unknown step '$1' (test_kernels, test_model, no_filesystem, sample, vae, published, forward, compiled, kernel_bench, sdpa)" |
        tee -a "$summary"
      return 2 ;;
  esac
}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(test_kernels test_model no_filesystem sample vae published forward compiled kernel_bench sdpa)
for s in "${steps[@]}"; do
  run_step "$s" || status=1
done
echo "== overall: $([ "$status" -eq 0 ] && echo PASS || echo FAIL)" | tee -a "$summary"
exit "$status"
