"""bench/central.py's py-spy summary: a sample is on CPU, waiting for the GIL or idle, and only
on-CPU samples rank the frames (py-spy --native keeps waiting threads' samples)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.central_profile import classify, named_thread_split, summarize, tree_cpu_s

CHECK = "thread (101): idstation-central-check;Thread.run (threading.py:982);Intake._run_checks (intake.py:130)"
VERIFY = f"{CHECK};crypto_sign_open (nacl/bindings/crypto_sign.py:120);_cffi_f_crypto_sign_open (_sodium.c:1)"
RAW = "\n".join(
    [
        f"{VERIFY};fe25519_mul (ed25519_ref10_fe_51.h:12) 6",
        f"{VERIFY};0x7f00aa (libsodium.so.23) 2",
        f"{VERIFY};pthread_cond_timedwait (libc.so.6) 2",  # the GIL taken back after the C call
        f"{CHECK};Intake._take (mqtt/central/intake.py:160);Queue.get (queue.py:180);"
        "Condition.wait (threading.py:324);lock_PyThread_acquire_lock (threadmodule.c:1);0x7f00bb (libc.so.6) 5",
        "thread (102): idstation-central-commit;Intake._run_commits (mqtt/central/intake.py:140);"
        "Connection.wait (psycopg/connection.py:900);poll (libc.so.6) 4",
        "thread (102): idstation-central-commit;Intake._run_commits (mqtt/central/intake.py:140);"
        "Connection.wait (psycopg/connection.py:900);BaseCursor._execute_send (psycopg/_cursor_base.py:1) 2",
        "not a sample line",
    ]
)


def test_waiting_for_the_gil_after_a_c_call_is_not_idle_and_not_on_cpu() -> None:
    assert classify(f"{VERIFY};pthread_cond_timedwait (libc.so.6)".split(";")) == "gil"
    assert classify(f"{VERIFY};fe25519_mul (ed25519_ref10_fe_51.h:12)".split(";")) == "cpu"


def test_work_below_a_wait_function_counts_as_cpu_but_the_wait_itself_is_idle() -> None:
    """psycopg's Connection.wait runs the query generator: Python work under it is work, its poll is not."""
    commit = "thread (102): idstation-central-commit;Connection.wait (psycopg/connection.py:900)"
    assert classify(f"{commit};poll (libc.so.6)".split(";")) == "idle"
    assert classify(f"{commit};BaseCursor._execute_send (psycopg/_cursor_base.py:1)".split(";")) == "cpu"


def test_the_summary_shares_each_threads_samples_and_ranks_only_on_cpu_frames() -> None:
    summary = summarize(RAW)
    assert summary["on_cpu_samples"] == 10
    assert summary["threads"]["idstation-central-check"] == {"cpu": 53.3, "gil": 13.3, "idle": 33.3, "samples": 15}
    assert summary["threads"]["idstation-central-commit"]["idle"] == 66.7
    assert summary["self_pct"][0] == ["idstation-central-check: fe25519_mul (ed25519_ref10_fe_51.h)", 60.0]
    assert ["idstation-central-check: [libsodium.so.23]", 20.0] in summary["self_pct"]
    assert summary["python_pct"][0] == [
        "idstation-central-check: crypto_sign_open (nacl/bindings/crypto_sign.py)",
        80.0,
    ]


def test_thread_cpu_is_split_by_name_and_threads_that_did_nothing_are_left_out() -> None:
    before = {1: 1.0, 2: 5.0, 3: 0.5}
    after = {1: 3.5, 2: 5.0, 3: 0.75, 4: 0.25}
    split = named_thread_split(before, after, {1: "check", 3: "commit"})
    assert split == {"check": 2.5, "tid-4": 0.25, "commit": 0.25}


def test_a_process_trees_cpu_includes_a_live_child_in_a_session_of_its_own() -> None:
    """PostgreSQL's backends call setsid(): they are counted by parentage, not by session."""
    burn = "import os, time\nos.setsid()\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    burn += "print('done', flush=True)\ntime.sleep(30)\n"
    before = tree_cpu_s(os.getpid())
    with subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "done\n"
            assert os.getsid(child.pid) != os.getsid(0)
            assert tree_cpu_s(os.getpid()) - before >= 0.25
        finally:
            child.kill()
