#!/usr/bin/env bash
# Two CPU processes on one machine (gloo), e.g. to check DDP behaviour without a GPU:
#   bash training/launch/cpu_2proc.sh --config training/configs/demo --output-dir runs/demo-ddp
ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 exec torchrun --standalone --nproc_per_node 2 -m training "$@"
