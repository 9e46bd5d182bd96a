#!/bin/sh
# The Node that jsii starts for aws-cdk-lib (stacks/node_runtime.py names it in JSII_NODE; `node` is
# the venv's Node 24, first on PATH). --liftoff-only: V8 compiles aws-cdk-lib's template validator
# (8.8 MB of WebAssembly) with its baseline compiler only. Otherwise its optimizing compiler recompiles
# the validator in the background, and Node's exit at the end of every synth waits for that (~0.4 s).
exec node --liftoff-only "$@"
