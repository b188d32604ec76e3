"""deploy/k8s/ manifests, checked against schemas (no cluster needed).

* Core kinds (Deployment, Service, PersistentVolumeClaim, and the Ray pods' templates as v1 PodTemplates):
  kubernetes-validate in strict mode, i.e. Kubernetes' own OpenAPI schemas with unknown fields rejected.
* The RayService: the part of KubeRay's CRD (ray.io/v1, KubeRay 1.6+) that the manifest uses, transcribed
  below with unknown fields rejected; its serveConfigV2 against Ray Serve's own ServeDeploySchema and the
  application's builder arguments (Sam3ServeArgs).
* What ties them to the code: probe paths, the routing environment, the token Secret, the /data volume,
  the Ray version pin, the Service selector.
"""

from __future__ import annotations

import sys

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
sys.path.insert(0, str(REPO / "deploy" / "ray"))
import sam3_proxy  # noqa: E402
import sam3_serve  # noqa: E402

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
POD_TEMPLATE = {"type": "object", "required": ["spec"]}  # checked in full as a v1 PodTemplate below
GROUP_COMMON = {"rayStartParams": STRING_MAP, "template": POD_TEMPLATE}
# From ray.io_rayservices.yaml (KubeRay): the fields this project's manifest sets, same types and enums.
RAYSERVICE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["serveConfigV2", "rayClusterConfig"],
            "properties": {
                "serveConfigV2": {"type": "string"},
                "rayClusterConfig": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["rayVersion", "headGroupSpec"],
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "authOptions": {"type": "object", "additionalProperties": False,
                                        "properties": {"mode": {"enum": ["disabled", "token"]}}},
                        "headGroupSpec": {"type": "object", "additionalProperties": False, "required": ["template"],
                                          "properties": GROUP_COMMON},
                        "workerGroupSpecs": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False, "required": ["groupName", "template"],
                            "properties": {"groupName": {"type": "string"}, "replicas": INT32,
                                           "minReplicas": INT32, "maxReplicas": INT32, **GROUP_COMMON}}},
                    },
                },
            },
        },
    },
}
ROUTING_ENV = {"RAY_SERVE_SESSION_ID_HEADER_KEY": sam3_serve.ROUTING_HEADER,
               "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH": "sam3_proxy:proxy_middlewares"}


def documents(name: str) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((K8S / name).read_text())}


def validate_core(resource: dict) -> None:
    kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)


def as_pod_template(name: str, template: dict) -> dict:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}


def ray_pod_templates(rayservice: dict) -> dict[str, dict]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    templates = {"head": cluster["headGroupSpec"]["template"]}
    templates.update({group["groupName"]: group["template"] for group in cluster["workerGroupSpecs"]})
    return templates


def env_of(container: dict) -> dict[str, dict | str]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


@pytest.mark.parametrize("kind", ["PersistentVolumeClaim", "Deployment", "Service"])
def test_the_single_replica_manifests_are_valid_kubernetes(kind):
    validate_core(documents("deployment.yaml")[kind])


def test_the_rayservice_and_its_pod_templates_match_kuberay_and_kubernetes_schemas():
    manifests = documents("ray-service.yaml")
    validate_core(manifests["PersistentVolumeClaim"])
    jsonschema.validate(manifests["RayService"], RAYSERVICE_SCHEMA)
    for group, template in ray_pod_templates(manifests["RayService"]).items():
        validate_core(as_pod_template(f"sam3-{group}", template))


def test_the_schema_check_catches_a_misspelt_field():
    rayservice = documents("ray-service.yaml")["RayService"]
    worker = ray_pod_templates(rayservice)["gpu"]
    worker["spec"]["containers"][0]["readinesProbe"] = worker["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        validate_core(as_pod_template("sam3-gpu", worker))
    rayservice["spec"]["rayClusterConfig"]["authOptions"]["mode"] = "tokens"
    with pytest.raises(jsonschema.ValidationError, match="tokens"):
        jsonschema.validate(rayservice, RAYSERVICE_SCHEMA)


def test_the_serve_config_is_a_valid_ray_serve_config_for_the_sam3_builder():
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(yaml.safe_load(documents("ray-service.yaml")["RayService"]["spec"]
                                                             ["serveConfigV2"]))
    [application] = config.applications
    assert application.import_path == "sam3_serve:build_app" and application.route_prefix == "/"
    args = sam3_serve.Sam3ServeArgs.model_validate(application.args)
    assert args.num_gpus == 1 and args.max_replicas > args.min_replicas  # one GPU per replica, autoscaled


def test_ray_pods_carry_the_routing_environment_and_gpu_workers_the_model_settings():
    rayservice = documents("ray-service.yaml")["RayService"]
    for group, template in ray_pod_templates(rayservice).items():
        env = env_of(template["spec"]["containers"][0])
        assert {name: env.get(name) for name in ROUTING_ENV} == ROUTING_ENV, group
    module, function = ROUTING_ENV["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"].split(":")
    assert module == sam3_proxy.__name__ and callable(getattr(sam3_proxy, function))
    worker = ray_pod_templates(rayservice)["gpu"]["spec"]["containers"][0]
    assert env_of(worker)["HF_TOKEN"] == {"secretKeyRef": {"name": "sam3-hf-token", "key": "HF_TOKEN"}}
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_probes_use_the_live_and_ready_endpoints_and_data_is_the_declared_volume():
    deployment = documents("deployment.yaml")
    rayservice = documents("ray-service.yaml")
    cases = [(deployment["Deployment"]["spec"]["template"], deployment["PersistentVolumeClaim"]),
             (ray_pod_templates(rayservice["RayService"])["gpu"], rayservice["PersistentVolumeClaim"])]
    for template, claim in cases:
        container = template["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/data"]
        [volume] = [v for v in template["spec"]["volumes"] if v["name"] == mount["name"]]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_the_ray_version_is_the_same_in_the_manifest_the_pin_and_the_installed_ray():
    import ray

    pinned = next(line.split("==")[1].strip() for line in (REPO / "deploy/ray/requirements.txt").read_text()
                  .splitlines() if line.startswith("ray[serve]=="))
    assert documents("ray-service.yaml")["RayService"]["spec"]["rayClusterConfig"]["rayVersion"] == pinned
    assert ray.__version__ == pinned


def test_the_service_selects_the_deployments_pods_on_their_http_port():
    manifests = documents("deployment.yaml")
    pod = manifests["Deployment"]["spec"]["template"]
    selector = manifests["Service"]["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    port_names = {port["name"] for port in pod["spec"]["containers"][0]["ports"]}
    assert {port["targetPort"] for port in manifests["Service"]["spec"]["ports"]} <= port_names
