"""overlay.py DEPLOY_DIR: print deploy/k8s's manifests with the changes a one-node
test cluster on loopback needs, and nothing else, as one multi-document YAML.

Changed: the ConfigMap's data (the test's source, range, branch, REST catalog and S3
endpoint), the Secret (the test servers' S3 keys; no catalog credential: the
test catalog has no auth), and in the Job: completions/parallelism/ICEFILL_SHARD_COUNT,
the image (imported, never pulled), hostNetwork (the node has only loopback),
resources scaled to a 2-core machine and a marker variable so the test can find its
pods' processes. The podFailurePolicy, backoffLimitPerIndex, security settings,
volumes and args stay as shipped.

Settings come from the environment: K8S_IMAGE, K8S_COMPLETIONS, K8S_PARALLELISM,
K8S_CONFIG (the ConfigMap's data as KEY=VALUE lines), K8S_MARKER, ICEFILL_S3_ACCESS_KEY_ID,
ICEFILL_S3_SECRET_ACCESS_KEY.
"""

import os
import sys

import yaml


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def main():
    d = sys.argv[1]
    env = os.environ
    cm = load(os.path.join(d, "configmap.yaml"))
    secret = load(os.path.join(d, "secret.yaml"))
    job = load(os.path.join(d, "job.yaml"))

    data = dict(line.split("=", 1) for line in env["K8S_CONFIG"].splitlines() if line.strip())
    unknown = set(data) - set(cm["data"]) - {"ICEFILL_S3_ENDPOINT"}
    if unknown:
        sys.exit(f"overlay.py: {sorted(unknown)} are not settings of configmap.yaml")
    cm["data"] = data
    secret["stringData"] = {
        "ICEFILL_S3_ACCESS_KEY_ID": env["ICEFILL_S3_ACCESS_KEY_ID"],
        "ICEFILL_S3_SECRET_ACCESS_KEY": env["ICEFILL_S3_SECRET_ACCESS_KEY"],
    }

    spec = job["spec"]
    n = int(env["K8S_COMPLETIONS"])
    spec["completions"] = n
    spec["parallelism"] = int(env["K8S_PARALLELISM"])
    pod = spec["template"]["spec"]
    pod["hostNetwork"] = True
    (c,) = pod["containers"]
    c["image"] = env["K8S_IMAGE"]
    c["imagePullPolicy"] = "Never"
    want = {
        "ICEFILL_SHARD_COUNT": str(n),
        "ICEFILL_WORKERS": "1",
        "ICEFILL_MEMORY_LIMIT": env.get("K8S_MEMORY_BUDGET", "768MiB"),
        "ICEFILL_K8S_TEST": env["K8S_MARKER"],
    }
    names = {e["name"] for e in c["env"]}
    missing = {"ICEFILL_SHARD_COUNT", "ICEFILL_WORKERS", "ICEFILL_MEMORY_LIMIT"} - names
    if missing:
        sys.exit(f"overlay.py: job.yaml no longer sets {sorted(missing)}; update the test overlay")
    for e in c["env"]:
        if e["name"] in want:
            e["value"] = want.pop(e["name"])
    c["env"] += [{"name": k, "value": v} for k, v in want.items()]
    mem = env.get("K8S_MEMORY", "1Gi")
    c["resources"] = {
        "requests": {"cpu": "1", "memory": mem, "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "1", "memory": mem, "ephemeral-storage": "1Gi"},
    }
    for v in pod["volumes"]:
        if "emptyDir" in v:
            v["emptyDir"]["sizeLimit"] = "1Gi"

    yaml.safe_dump_all([cm, secret, job], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
