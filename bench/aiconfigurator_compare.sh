#!/bin/bash
# Re-measure the AIConfigurator column of bench/data/aiconfigurator-0.12.0.csv (not part of `make bench`).
# Needs AIConfigurator in its own venv, never the project's:
#   python3 -m venv /tmp/aic-venv && /tmp/aic-venv/bin/pip install aiconfigurator==0.12.0
# Each query prints TPOT (static_gen: one decode step) or TTFT (static_ctx: one prefill) in ms.
set -euo pipefail
AIC=${AIC:-/tmp/aic-venv/bin/aiconfigurator}
q() { "$AIC" cli estimate --backend trtllm "$@" 2>&1 | grep -E 'TPOT|TTFT' ; }
L70=meta-llama/Meta-Llama-3.1-70B
for b in 1 8 64 256; do q --model-path $L70 --system h100_sxm --estimate-mode static_gen --isl 1024 --osl 1024 --batch-size $b --tp-size 4 --gemm-quant-mode fp8 --kvcache-quant-mode fp8; done
q --model-path $L70 --system h100_sxm --estimate-mode static_ctx --isl 4096 --osl 1 --batch-size 1 --tp-size 4 --gemm-quant-mode fp8 --kvcache-quant-mode fp8
q --model-path meta-llama/Meta-Llama-3.1-8B --system h100_sxm --estimate-mode static_gen --isl 1000 --osl 500 --batch-size 64 --tp-size 1 --gemm-quant-mode bfloat16 --kvcache-quant-mode bfloat16
q --model-path meta-llama/Meta-Llama-3.1-8B --system h200_sxm --estimate-mode static_gen --isl 1024 --osl 1024 --batch-size 128 --tp-size 1 --gemm-quant-mode fp8 --kvcache-quant-mode fp8
q --model-path Qwen/Qwen3-235B-A22B --system h200_sxm --estimate-mode static_gen --isl 1024 --osl 1024 --batch-size 64 --tp-size 8 --moe-ep-size 8 --moe-tp-size 1 --gemm-quant-mode fp8 --kvcache-quant-mode fp8 --moe-quant-mode fp8
q --model-path meta-llama/Meta-Llama-3.1-405B --system h200_sxm --estimate-mode static_gen --isl 1024 --osl 1024 --batch-size 32 --tp-size 8 --gemm-quant-mode fp8 --kvcache-quant-mode fp8
for b in 1 64 256; do q --model-path $L70 --system b200_sxm --estimate-mode static_gen --isl 1024 --osl 1024 --batch-size $b --tp-size 4 --gemm-quant-mode fp8 --kvcache-quant-mode fp8; done
q --model-path $L70 --system b200_sxm --estimate-mode static_ctx --isl 4096 --osl 1 --batch-size 1 --tp-size 4 --gemm-quant-mode fp8 --kvcache-quant-mode fp8
# The public calibration points' layouts (Llama 2 70B is not in AIConfigurator's model list: Llama 3.1 70B, same shapes but a 4x vocabulary)
q --model-path openai/gpt-oss-120b --system b200_sxm --estimate-mode static_gen --isl 1024 --osl 8192 --batch-size 56 --tp-size 1 --moe-tp-size 1 --moe-ep-size 1 --gemm-quant-mode bfloat16 --kvcache-quant-mode fp8 --moe-quant-mode w4a8_mxfp4_mxfp8
q --model-path openai/gpt-oss-120b --system gb300 --estimate-mode static_gen --isl 1500 --osl 1278 --batch-size 1024 --tp-size 1 --moe-tp-size 1 --moe-ep-size 1 --gemm-quant-mode bfloat16 --kvcache-quant-mode fp8 --moe-quant-mode w4a8_mxfp4_mxfp8
q --model-path $L70 --system b200_sxm --estimate-mode static_gen --isl 684 --osl 294 --batch-size 512 --tp-size 1 --gemm-quant-mode nvfp4 --kvcache-quant-mode fp8
q --model-path $L70 --system b200_sxm --estimate-mode static_ctx --isl 684 --osl 1 --batch-size 12 --tp-size 1 --gemm-quant-mode nvfp4 --kvcache-quant-mode fp8
