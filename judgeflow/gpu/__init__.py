"""Open judges on GPUs: Prometheus 2 through vLLM and PairRM through llm-blender.

Nothing here imports torch, transformers, llm-blender or vLLM at import time: each module
imports its heavy library inside the function that needs it, so the core stays importable on a
machine with neither extra installed (and Prefect can import the flows to register them).
The two extras cannot share one environment (vLLM 0.33 needs transformers 5, llm-blender 0.0.2
breaks under it): they run as separate deployments on the GPU pool, see docs/gpu.md.
"""
