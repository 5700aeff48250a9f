"""The soak's clients and its memory sampler (scripts/soak.sh starts the servers and calls this)."""
import argparse, os, random, subprocess, sys, tempfile, threading, time, hashlib

parser = argparse.ArgumentParser()
parser.add_argument("--url"); parser.add_argument("--token"); parser.add_argument("--kiln")
parser.add_argument("--minutes", type=float); parser.add_argument("--clients", type=int)
parser.add_argument("--pids", nargs="+", type=int)
args = parser.parse_args()

lock = threading.Lock()
counts, errors, samples = {}, [], []
deadline = time.monotonic() + args.minutes * 60


def kiln(*argv, home):
    env = dict(os.environ, KILN_SERVER=args.url, KILN_TOKEN=args.token, HOME=home)
    return subprocess.run([args.kiln, *argv], env=env, capture_output=True, text=True)


def record(kind, result):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        if result is not True:
            errors.append(f"{kind}: {result}")


def client(n):
    rng = random.Random(n)
    work = tempfile.mkdtemp(prefix=f"soak-{n}-")
    home = os.path.join(work, "home")
    model = f"soak/c{n}"
    pushed = []
    i = 0
    while time.monotonic() < deadline:
        i += 1
        op = rng.choice(["push", "push", "pull", "pull", "ls", "show", "alias"]) if pushed else "push"
        if op == "push":
            folder = os.path.join(work, f"v{i}")
            os.makedirs(folder)
            data = rng.randbytes(rng.randint(1, 2_000_000))
            with open(os.path.join(folder, "w.bin"), "wb") as f:
                f.write(data)
            r = kiln("push", folder, f"{model}:{i}", home=home)
            if r.returncode == 0:
                pushed.append((i, hashlib.sha256(data).hexdigest()))
            record("push", r.returncode == 0 or r.stderr.strip()[-300:])
        elif op == "pull":
            version, digest = rng.choice(pushed)
            out = os.path.join(work, f"pull{i}")
            r = kiln("pull", f"{model}:{version}", "-o", out, home=home)
            ok = r.returncode == 0 and hashlib.sha256(open(os.path.join(out, "w.bin"), "rb").read()).hexdigest() == digest
            record("pull", ok or (r.stderr.strip()[-300:] or "bytes differ"))
            subprocess.run(["rm", "-rf", out])
        elif op == "ls":
            r = kiln("ls", "soak", home=home)
            record("ls", r.returncode == 0 or r.stderr.strip()[-300:])
        elif op == "show":
            r = kiln("show", f"{model}:{rng.choice(pushed)[0]}", home=home)
            record("show", r.returncode == 0 or r.stderr.strip()[-300:])
        else:
            version = rng.choice(pushed)[0]
            r = kiln("show", f"{model}:{version}", "--json", home=home)
            if '"status": "ready"' in r.stdout:
                r = kiln("alias", "set", model, "production", str(version), home=home)
                record("alias", r.returncode == 0 or r.stderr.strip()[-300:])
    subprocess.run(["rm", "-rf", work])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def sampler():
    started = time.monotonic()
    while time.monotonic() < deadline:
        samples.append((time.monotonic() - started, [rss_mib(p) for p in args.pids]))
        time.sleep(10)


threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
threads.append(threading.Thread(target=sampler))
for t in threads:
    t.start()
for t in threads:
    t.join()

total = sum(counts.values())
print(f"| operations | {total} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) |")
print(f"| errors | {len(errors)} |")
for e in errors[:20]:
    print(f"|   | {e} |")
print("\n| minute | " + " | ".join(f"server {p} RSS MiB" for p in args.pids) + " |")
print("|---|" + "---|" * len(args.pids))
for at, rss in samples:
    if int(at) % 60 < 10:
        print(f"| {at / 60:.0f} | " + " | ".join(f"{r:.0f}" for r in rss) + " |")
first, last = samples[0][1], samples[-1][1]
print("\nfirst/max/last RSS MiB: " + "; ".join(
    f"{a:.0f}/{max(s[1][i] for s in samples):.0f}/{b:.0f}" for i, (a, b) in enumerate(zip(first, last))))
sys.exit(1 if errors else 0)
