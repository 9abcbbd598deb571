#!/usr/bin/env python3
"""Writes a moetrain results file as TensorBoard scalars (event files under LOGDIR), at the 1-based
steps the progress lines show: every /train series (train/loss, train/grad_norm, ...), the
validation's loss and perplexity, each MoE block's dropped fraction, experts per token and its
load imbalance (max over mean), and the EvoMoE phase. With --follow it tails the file while the
run writes it (HDF5 SWMR) and returns once the run has released its folder (the writer's lock on
<run>/.lock) and every row is written. Needs h5py and tensorboard (torch.utils.tensorboard's
writer; e.g. a venv: `/usr/bin/python3 -m venv --system-site-packages V &&
V/bin/pip install tensorboard`).

usage: tensorboard_log.py RESULTS LOGDIR [--follow] [--interval 2]
       then: tensorboard --logdir LOGDIR
"""
import argparse
import fcntl
import os
import time

import h5py
import numpy as np
from torch.utils.tensorboard import SummaryWriter


def scalars(f):
    """{tag: (steps, values)} of every series in the results file f, steps 1-based."""
    out = {}
    for group, step in (("train", "train/step"), ("valid", "valid/step"), ("phase", "phase/step")):
        if step not in f:
            continue
        f[step].refresh()
        steps = f[step][()].astype(np.int64) + 1
        for name, d in f[group].items():
            if name == "step":
                continue
            d.refresh()
            out[f"{group}/{name}"] = (steps, d[()])
    if "routing" in f:
        steps = out["train/loss"][0]
        for block, g in f["routing"].items():
            for name, d in g.items():
                d.refresh()
                v = d[()]
                if v.ndim == 2:  # the load per expert: its imbalance
                    v = v.max(axis=1) / np.maximum(v.mean(axis=1), 1e-30)
                    name = "load_max_over_mean"
                out[f"routing/{block}/{name}"] = (steps, v)
    return out


def run_done(results):
    """Whether the run that writes `results` has released its folder's lock."""
    lock = os.path.join(os.path.dirname(os.path.abspath(results)), ".lock")
    if not os.path.exists(lock):
        return True
    with open(lock) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("logdir")
    ap.add_argument("--follow", action="store_true")
    ap.add_argument("--interval", type=float, default=2.0)
    args = ap.parse_args()
    writer = SummaryWriter(args.logdir)
    written = {}  # tag: rows written
    while True:
        if args.follow and not os.path.exists(args.results):  # the run has not started yet
            time.sleep(args.interval)
            continue
        done = run_done(args.results)  # before the read: what it reads then is whole
        with h5py.File(args.results, "r", swmr=True) as f:
            series = scalars(f)
        for tag, (steps, values) in series.items():
            n = min(len(steps), len(values))
            for i in range(written.get(tag, 0), n):
                writer.add_scalar(tag, float(values[i]), int(steps[i]))
            written[tag] = n
        writer.flush()
        if not args.follow or done:
            break
        time.sleep(args.interval)
    writer.close()
    print(f"tensorboard_log: {args.results} -> {args.logdir}: {len(written)} scalars, "
          f"{written.get('train/loss', 0)} steps")


if __name__ == "__main__":
    main()
