"""judgeflow's benchmarks: throughput against the bare SDK and peers, scale, memory, orchestration.

``python -m benchmarks`` runs every benchmark below in one process tree and writes BENCHMARKS.md;
``python -m benchmarks --quick`` does a short run at small sizes. Each script also runs alone
(``python -m benchmarks.<name> --help``) and writes its figures as JSON with ``--json``.

* ``live_judging``    judgeflow vs bare ``openai.AsyncOpenAI`` on the simulator (rows/s, CPU/row)
* ``peers``           judgeflow vs prometheus-eval and distilabel (throwaway venvs under /tmp)
* ``batch_path``      200,000 requests: build/split/upload and download/parse, peak RSS
* ``consensus_pairs`` consensus + agreement + pairs over 1,000,000 judgments
* ``orchestration``   Prefect task runs per 10,000 rows; flow vs core wall time
* ``pairrm_gpu``      PairRM throughput on a GPU (skipped without CUDA)
"""
