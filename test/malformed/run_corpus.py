"""The malformed-input corpus (cases.txt): runs each case and checks hyft refuses it
as a user would want: the expected exit code, a message on stderr that starts with
"error:", names what is at fault and carries no raw library text, within 60 s.

    python run_corpus.py HYFT_BIN FIXTURES_DIR
"""
import os
import shutil
import subprocess
import sys
import time

RAW_LIBRARY_TEXT = ["json.exception", "yaml-cpp", "YAML::", "bad conversion", "basic_string", "vector::",
                    "std::", "stoi", "stod", "cxxopts", "c10::", "what():", "Exception raised from",
                    "bad_alloc", "out_of_range", "invalid_argument", "Traceback", "Argument '", ".cc(", ".cpp:"]


def main():
    hyft, fixtures = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    tmp_root = os.path.join(fixtures, "tmp", "malformed")
    shutil.rmtree(tmp_root, ignore_errors=True)
    places = {
        "hyft": hyft, "python": sys.executable, "files": os.path.join(here, "files"),
        "model": os.path.join(fixtures, "llama", "mha", "model"),
        "data": os.path.join(fixtures, "llama", "mha", "data.jsonl"),
        "tok": os.path.join(fixtures, "tokenizer", "test.model"),
        "peft": os.path.join(fixtures, "peft", "mha_all"),
    }
    cases, failures = 0, []
    with open(os.path.join(here, "cases.txt"), encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            code, expect, command = (part.strip() for part in line.split(" | ", 2))
            cases += 1
            t = os.path.join(tmp_root, f"case-{line_no}")
            os.makedirs(t)
            shell = command.replace("{t}", t)
            for name, value in places.items():
                shell = shell.replace("{" + name + "}", value)
            start = time.time()
            try:
                r = subprocess.run(["bash", "-c", "set -o pipefail; " + shell], capture_output=True, text=True,
                                   errors="replace", timeout=60, env=dict(os.environ, HF_HUB_OFFLINE="1"))
            except subprocess.TimeoutExpired:
                failures.append(f"cases.txt:{line_no}: took over 60 s: {command}")
                continue
            took = time.time() - start
            err = r.stderr.strip()
            last = err.splitlines()[-1] if err else ""
            problems = []
            if r.returncode != int(code):
                problems.append(f"exit {r.returncode}, expected {code}")
            if expect not in err:
                problems.append(f"the message does not contain {expect!r}")
            error_lines = [l for l in err.splitlines() if l.startswith("error:")]
            if not error_lines:
                problems.append("no line on stderr starts with 'error:'")
            for raw in RAW_LIBRARY_TEXT:
                if raw in err:
                    problems.append(f"raw library text {raw!r}")
            status = "ok  " if not problems else "FAIL"
            print(f"{status} cases.txt:{line_no} ({took:.1f} s, exit {r.returncode}): {last[:160]}")
            if not problems:
                shutil.rmtree(t, ignore_errors=True)  # (some cases write tens of MB)
            else:
                failures.append(f"cases.txt:{line_no}: {'; '.join(problems)}\n    command: {command}\n"
                                f"    stderr: {err[-600:]}")
    print(f"\nmalformed corpus: {cases} cases, {cases - len(failures)} refused as expected, {len(failures)} not")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
