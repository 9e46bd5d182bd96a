#!/bin/sh
# The Node that jsii starts in the template validator's helper process (stacks/template_validator.py;
# stacks/node_runtime.py names it in JSII_NODE there; `node` is the venv's Node 24, first on PATH).
# --single-threaded: V8 without its background compiler and GC threads. Building aws-cdk-lib's WebAssembly
# validator is one long computation: it takes 0.6 s of one core this way, against 0.9 s and 1.3 cores of
# CPU with the threads, which the app's own process, building its stacks on the other core, needs.
exec node --single-threaded "$@"
