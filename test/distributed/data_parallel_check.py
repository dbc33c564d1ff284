"""Data-parallel fine-tuning on the CPU: real processes under torchrun, talking
through c10d's TCPStore and gloo's collectives.

  python3 data_parallel_check.py HYFT_BINARY MODEL_DIR WORK_DIR [--device cuda]

On the CPU (CTest): gloo, fp32, the tolerances below. With --device cuda (a
machine of 2 GPUs, scripts/gpu_check.sh): NCCL, bf16, tolerances of bf16 noise
(losses 1e-2 relative; adapters 5e-2 in relative Frobenius norm, since AdamW's
normalised first steps turn bf16 noise in near-zero gradients into whole updates), and a rank that hangs is ended by
NCCL's watchdog rather than with hyft's message. HYFT_DIST_BACKEND=gloo runs it over
gloo on CUDA, two processes sharing one GPU (a machine of one GPU).

Checks, each printing its figures:
  1. 2 processes x micro-batch 2, and 2 x micro-batch 1 x accumulation 2, train the
     adapter 1 process x micro-batch 4 trains (fp32; per-step losses within 1e-5
     relative, adapter weights within 1e-4 absolute after 4 AdamW steps at lr 1e-3;
     the held-out loss, split between the processes, within 1e-5 relative).
  2. A checkpoint of 2 processes resumed by 1, and one of 1 resumed by 2, end where
     the run that saved it ends (adapter within 1e-6), with packing too.
  3. SIGTERM to rank 1 alone: one checkpoint, every rank exits 143, --resume ends
     bit-identical to the uninterrupted run.
  4. Rank 1 hangs: rank 0 stops with a plain message after --dist-timeout, and the
     launcher ends within a bounded time.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

hyft, model, work = sys.argv[1:4]
cuda = sys.argv[4:6] == ["--device", "cuda"]
loss_tol, adapter_tol, resume_tol = (1e-2, 5e-2, 5e-2) if cuda else (1e-5, 1e-4, 1e-6)
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, processes=1, env=None, timeout=300, static=False):
    """torchrun --standalone: its agent serves the store on a free port (every rank
    a client); static: rank 0 serves it at --master-port."""
    cmd = [hyft, "finetune"] + args
    if processes > 1:
        rdzv = ["--master-addr", "127.0.0.1", "--master-port", str(free_port())] if static else ["--standalone"]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)] + rdzv + \
              ["--no-python"] + cmd
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.time() - t0


def adapter(out):
    return load_file(os.path.join(out, "adapter", "adapter_model.safetensors"))


def max_diff(a, b):
    """fp32: the largest absolute difference; bf16 (cuda): ||a - b|| / ||a|| over every tensor."""
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    if cuda:
        num = sum(float((a[k].double() - b[k].double()).norm()) ** 2 for k in a) ** 0.5
        return num / sum(float(a[k].double().norm()) ** 2 for k in a) ** 0.5
    return max((a[k] - b[k]).abs().max().item() for k in a)


diff_name = "relative norm diff" if cuda else "max abs diff"


def metrics(out):
    rows = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    return [r["loss"] for r in rows if "loss" in r], [r["eval_loss"] for r in rows if "eval_loss" in r]


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data = os.path.join(work, "train.jsonl")
gen = torch.Generator().manual_seed(1)
with open(data, "w") as f:
    for _ in range(64):
        n = int(torch.randint(5, 40, (1,), generator=gen))
        f.write(json.dumps({"input_ids": torch.randint(3, 96, (n,), generator=gen).tolist()}) + "\n")
common = ["--model", model, "--train", data, "--device", "cuda" if cuda else "cpu",
          "--precision", "bf16" if cuda else "fp32", "--lora-dropout", "0",
          "--targets", "all", "--max-steps", "4", "--lr", "1e-3", "--log-every", "1", "--save-every", "2",
          "--eval-split", "0.2", "--eval-every", "2"]
o = lambda name: ["--output", os.path.join(work, name)]

# 1. Equivalence.
rc, log, _ = run(common + ["--micro-batch", "4"] + o("one"))
check(rc == 0, "1 process x micro-batch 4 runs (rc %d)" % rc)
if rc: print(log)
for name, args, static in [("two", ["--micro-batch", "2"], False),
                           ("two_accum", ["--micro-batch", "1", "--grad-accum", "2"], True)]:
    rc, log, _ = run(common + args + o(name), processes=2, static=static)
    backend = os.environ.get("HYFT_DIST_BACKEND") or ("nccl" if cuda else "gloo")
    check(rc == 0 and "2 processes (%s" % backend in log,
          "2 processes (%s) run over %s (rc %d)" % (" ".join(args), backend, rc))
    if rc:
        print(log)
        continue
    (l1, e1), (l2, e2) = metrics(os.path.join(work, "one")), metrics(os.path.join(work, name))
    rel = max(abs(a - b) / abs(a) for a, b in zip(l1, l2))
    check(len(l1) == len(l2) == 4 and rel < loss_tol,
          "%s: per-step losses equal 1 process's: max rel diff %.2e (tolerance %g)" % (name, rel, loss_tol))
    erel = max(abs(a - b) / abs(a) for a, b in zip(e1, e2))
    check(len(e1) == len(e2) == 2 and erel < loss_tol,
          "%s: held-out losses equal: max rel diff %.2e (tolerance %g)" % (name, erel, loss_tol))
    d = max_diff(adapter(os.path.join(work, "one")), adapter(os.path.join(work, name)))
    check(d < adapter_tol, "%s: adapter equals 1 process's: %s %.2e (tolerance %g)" % (name, diff_name, d, adapter_tol))
    events = [f for f in os.listdir(os.path.join(work, name)) if f.startswith("events.out.tfevents.")]
    check(len(events) == 1, "%s: one writer of the logs (%d TensorBoard event files)" % (name, len(events)))


# 2. Resume with another number of processes.
def resume_from(source, name, processes, extra=()):
    dst = os.path.join(work, name)
    shutil.copytree(os.path.join(work, source), dst)
    shutil.rmtree(os.path.join(dst, "adapter"))
    shutil.rmtree(os.path.join(dst, "checkpoints", "step-4"))
    mb = "4" if processes == 1 else "2"
    return run(common + list(extra) + ["--micro-batch", mb, "--resume"] + o(name), processes=processes)


for source, name, procs in [("two", "two_then_one", 1), ("one", "one_then_two", 2)]:
    rc, log, _ = resume_from(source, name, procs)
    check(rc == 0 and "resuming a run saved by" in log, "%s resumed by %d process(es) (rc %d)" % (source, procs, rc))
    if rc:
        print(log)
        continue
    d = max_diff(adapter(os.path.join(work, source)), adapter(os.path.join(work, name)))
    check(d < resume_tol, "%s: ends where %s ends: %s %.2e (tolerance %g)" % (name, source, diff_name, d, resume_tol))

packing = ["--packing", "--max-seq-len", "48"]
rc, log, _ = run(common + packing + ["--micro-batch", "2"] + o("pack_two"), processes=2)
check(rc == 0, "packing over 2 processes runs (rc %d)" % rc)
rc, log, _ = resume_from("pack_two", "pack_two_then_one", 1, packing)
check(rc == 0 and "resuming a run saved by 2" in log, "packing: 2 processes' checkpoint resumed by 1 (rc %d)" % rc)
if rc: print(log)

# 3. SIGTERM to one rank.
rc, log, _ = run(common + ["--micro-batch", "2"] + o("term"), processes=2,
                 env={"HYFT_TEST_SIGNAL_AT_STEP": "1", "HYFT_TEST_SIGNAL_RANK": "1"})
term = os.path.join(work, "term")
saved = sorted(os.listdir(os.path.join(term, "checkpoints"))) if os.path.isdir(os.path.join(term, "checkpoints")) else []
check(rc != 0 and log.count("exitcode  : 143") + log.count("exitcode: 143") >= 1 and saved == ["step-1"],
      "SIGTERM to rank 1 at step 1: one checkpoint %s, ranks exit 143" % saved)
rc, log, _ = run(common + ["--micro-batch", "2", "--resume"] + o("term"), processes=2)
if rc == 0:
    d = max_diff(adapter(os.path.join(work, "two")), adapter(term))
    check(d == 0.0, "resumed after SIGTERM: adapter equals the uninterrupted run's (%s %.1e)" % (diff_name, d))
else:
    check(False, "resume after SIGTERM (rc %d)" % rc)
    print(log)

# 4. A rank that hangs.
rc, log, seconds = run(common + ["--micro-batch", "2", "--dist-timeout", "5"] + o("hang"), processes=2,
                       env={"HYFT_TEST_HANG_AT_STEP": "1", "HYFT_TEST_SIGNAL_RANK": "1"}, timeout=200)
said = "another process died or did not answer in time" in log or (cuda and "Watchdog" in log)
check(rc != 0 and said and seconds < 120, "rank 1 hangs: rank 0 stops with a message, all ended after %.0f s (rc %d)"
      % (seconds, rc))
if not said:
    print(log[-3000:])

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
