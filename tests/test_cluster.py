import os
import stat
import subprocess

import pytest
import yaml

from components.connect_config import SCHEMA_REGISTRY_IMAGE
from harness.stackgraph import FAKE_KUBECONFIG, contains_secret_marker, run_stack, walk

COMMAND = "command:local:Command"
PROVIDER = "pulumi:providers:kubernetes"


def kind_config(graph):
    return yaml.safe_load(graph.one(COMMAND).inputs["environment"]["KIND_CONFIG"])


def test_the_kind_cluster_has_one_control_plane_and_two_workers_on_a_pinned_image():
    config = kind_config(run_stack("dev"))
    assert config["name"] == "data-ingestion-dev"
    assert [node["role"] for node in config["nodes"]] == ["control-plane", "worker", "worker"]
    for node in config["nodes"]:
        assert "@sha256:" in node["image"]


def port_mappings(config):
    return {
        (m["containerPort"], m["hostPort"], m["listenAddress"])
        for m in config["nodes"][0]["extraPortMappings"]
    }


def test_every_node_port_of_the_port_table_is_published_on_loopback():
    assert port_mappings(kind_config(run_stack("dev"))) == {
        (30432, 5432, "127.0.0.1"),
        (30092, 9092, "127.0.0.1"),
        (30093, 9093, "127.0.0.1"),
        (30094, 9094, "127.0.0.1"),
        (30081, 8081, "127.0.0.1"),
        (30083, 8083, "127.0.0.1"),
    }


def test_the_offset_shifts_host_ports_and_not_node_ports():
    mappings = port_mappings(kind_config(run_stack("dev-alice", {"hostPortOffset": 100})))
    assert {(node, host) for node, host, _ in mappings} == {
        (30432, 5532), (30092, 9192), (30093, 9193), (30094, 9194), (30081, 8181), (30083, 8183)
    }


def test_two_stacks_share_no_cluster_kubeconfig_or_host_port():
    dev = run_stack("dev")
    alice = run_stack("dev-alice", {"hostPortOffset": 100})
    dev_env, alice_env = (g.one(COMMAND).inputs["environment"] for g in (dev, alice))
    assert dev_env["CLUSTER"] != alice_env["CLUSTER"]
    assert dev_env["KUBECONFIG_PATH"] != alice_env["KUBECONFIG_PATH"]
    assert dev.outputs["clusterName"] != alice.outputs["clusterName"]
    dev_ports = {host for _, host, _ in port_mappings(kind_config(dev))}
    alice_ports = {host for _, host, _ in port_mappings(kind_config(alice))}
    assert dev_ports.isdisjoint(alice_ports)
    assert set(dev.outputs["hostPorts"].values()) == dev_ports


def test_the_cluster_command_is_idempotent_replaced_whole_and_keeps_the_kubeconfig_secret():
    graph = run_stack("dev")
    command = graph.one(COMMAND)
    assert command.inputs["create"] and command.inputs["update"] and command.inputs["delete"]
    assert command.inputs["triggers"] == [command.inputs["environment"]["KIND_CONFIG"]]
    # create adopts a cluster of the same name, so the old one must be gone first
    assert command.delete_before_replace
    assert "stdout" in command.additional_secret_outputs
    assert command.inputs["logging"] == "stderr"
    provider = graph.one(PROVIDER)
    assert contains_secret_marker(provider.wire["kubeconfig"])
    assert provider.wire["kubeconfig"]["value"] == FAKE_KUBECONFIG
    assert provider.inputs["deleteUnreachable"] == "true"
    assert FAKE_KUBECONFIG not in list(walk(graph.outputs))
    assert "kubeconfig-credential" not in str(graph.outputs_wire)


def test_every_kubernetes_object_uses_the_explicit_provider_and_belongs_to_a_component():
    graph = run_stack("dev")
    provider = graph.one(PROVIDER)
    objects = graph.kubernetes_objects()
    assert len(objects) > 20
    for resource in objects:
        assert resource.provider.startswith(provider.urn + "::"), resource.name
        component = graph.component_of(resource)
        assert component is not None and component.type.startswith("data-ingestion:"), resource.name


def test_each_tier_is_a_component_resource():
    graph = run_stack("dev")
    tiers = {r.type for r in graph.resources if not r.custom}
    assert {"data-ingestion:cluster:Cluster", "data-ingestion:storage:Storage",
            "data-ingestion:platform:Platform"} <= tiers


def test_an_existing_cluster_is_used_through_its_kubeconfig_and_context(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    graph = run_stack("shared", {"cluster": "existing", "kubeconfig": str(kubeconfig), "kubeContext": "eks-dev"})
    assert graph.of_type(COMMAND) == []
    provider = graph.one(PROVIDER)
    assert provider.inputs["kubeconfig"] == str(kubeconfig)
    assert provider.inputs["context"] == "eks-dev"
    assert provider.inputs["deleteUnreachable"] == "false"
    assert graph.of_type("kubernetes:core/v1:Namespace")



def node_ports(graph):
    """Every NodePort the stack's Services claim, cluster-wide."""
    return sorted(
        port["nodePort"]
        for service in graph.of_type("kubernetes:core/v1:Service")
        for port in service.inputs["spec"].get("ports", [])
        if "nodePort" in port
    )


def test_two_stacks_on_one_existing_cluster_claim_no_common_node_port(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    shared = {"cluster": "existing", "kubeconfig": str(kubeconfig), "kubeContext": "shared-dev"}
    alice = run_stack("alice", {**shared, "namespace": "cdc-alice"})
    bob = run_stack("bob", {**shared, "namespace": "cdc-bob", "hostPortOffset": 100})
    assert node_ports(alice) == [30081, 30083, 30092, 30093, 30094, 30432]
    assert node_ports(bob) == [30181, 30183, 30192, 30193, 30194, 30532]
    # Each broker is still advertised at its host port, which the port-forward of the README maps.
    assert bob.outputs["hostPorts"]["kafka-0"] == 9192


def test_on_an_existing_cluster_an_offset_that_leaves_the_node_port_range_is_refused(tmp_path):
    from tests.test_settings import refused

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(FAKE_KUBECONFIG)
    [problem] = refused({"cluster": "existing", "kubeconfig": str(kubeconfig), "hostPortOffset": "3000"}).problems
    assert problem.key == "data-ingestion:hostPortOffset"
    assert "outside 30000-32767" in problem.message and "choose an offset from -81 to 2335" in problem.message


# The create script, run for real against stand-ins for the kind and docker commands: Docker
# cannot run here, but what the script does with their answers can be checked.
STAND_IN = """#!/bin/bash
echo "$(date +%s.%N) $(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $1 $2" in
  "kind get clusters") cat "$STATE/clusters" 2>/dev/null ;;
  "kind create cluster") echo "$4" >> "$STATE/clusters"; cp "$6" "$STATE/created-config" ;;
  "kind get kubeconfig") echo "kubeconfig-of $4" ;;
  "docker port "*) cat "$STATE/ports" 2>/dev/null | grep "^$3 " | cut -d' ' -f2- ;;
  "docker image inspect") grep -qx "$3" "$STATE/images" 2>/dev/null || exit 1 ;;
  "docker pull --quiet")
    grep -qx "$3" "$STATE/unreachable" 2>/dev/null && { echo "pull access denied" >&2; exit 1; }
    sleep 0.5; echo "$3"; echo "$3" >> "$STATE/images"
    echo "$(date +%s.%N) pulled $3" >> "$CALLS" ;;
  "docker version --format") cat "$STATE/platform" 2>/dev/null || echo linux/amd64 ;;
  "docker image save")
    # Docker before 28 has no --platform (and the classic image store, which keeps every platform).
    [ -e "$STATE/classic-store" ] && { echo "unknown flag: --platform" >&2; exit 125; }
    grep -qx "$7" "$STATE/images" 2>/dev/null || { echo "No such image: $7" >&2; exit 1; }
    echo "$7 $4" > "$6" ;;  # --platform P --output FILE IMAGE: the image for one platform
  "kind load docker-image")
    # On the containerd image store a multi-platform image lacks the other platforms' content (kind#3795).
    [ -e "$STATE/classic-store" ] || { echo "ERROR: failed to load image: command \"docker exec --privileged -i data-ingestion-dev-control-plane ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -\" failed with error: exit status 1; ctr: content digest sha256:3f1c: not found" >&2; exit 1; }
    echo "$(date +%s.%N) loaded $3 for every platform" >> "$CALLS" ;;
  "kind load image-archive")
    [ "$(wc -l < "$3")" = 1 ] || { echo "ERROR: more than one platform in $3" >&2; exit 1; }
    echo "$(date +%s.%N) loaded $(cut -d' ' -f1 "$3") for $(cut -d' ' -f2 "$3")" >> "$CALLS" ;;
esac
exit 0
"""


@pytest.fixture
def cluster_script(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kind", "docker"):
        path = bin_dir / tool
        path.write_text(STAND_IN)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state"
    state.mkdir()
    environment = run_stack("dev").one(COMMAND).inputs["environment"]
    command = run_stack("dev").one(COMMAND).inputs["create"]

    def run():
        env = {
            **environment,
            "KUBECONFIG_PATH": str(tmp_path / "kube" / "config"),
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CALLS": str(tmp_path / "calls"),
            "STATE": str(state),
        }
        return subprocess.run(["/bin/bash", "-c", command], env=env, capture_output=True, text=True)

    return run, state, tmp_path / "calls"


def test_create_makes_the_cluster_once_and_then_adopts_it(cluster_script):
    run, state, calls = cluster_script
    first = run()
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "kubeconfig-of data-ingestion-dev"
    assert yaml.safe_load((state / "created-config").read_text())["name"] == "data-ingestion-dev"
    (state / "ports").write_text(
        "".join(f"{node}/tcp 127.0.0.1:{host}\n" for node, host in
                [(30432, 5432), (30092, 9092), (30093, 9093), (30094, 9094), (30081, 8081), (30083, 8083)])
    )
    second = run()
    assert second.returncode == 0, second.stderr
    assert "reusing the existing Kind cluster" in second.stderr
    assert calls.read_text().count("kind create cluster") == 1


def calls_of(calls):
    """(time, command) per call of the stand-ins, in order."""
    return [(float(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in calls.read_text().splitlines()]


def test_every_pod_image_is_pulled_once_in_parallel_and_loaded_before_any_workload(cluster_script):
    run, state, calls = cluster_script
    (state / "images").write_text("postgres:15.19-bookworm\n")  # already in the laptop's Docker
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "kubeconfig-of data-ingestion-dev"  # nothing else on the kubeconfig's stream
    log = calls_of(calls)
    pulls = [(time, command.split()[-1]) for time, command in log if command.startswith("docker pull")]
    pulled = {image: time for time, command in log if command.startswith("pulled") for image in [command.split()[-1]]}
    loads = [(time, command.split()[1]) for time, command in log if command.startswith("loaded ")]
    # The images the pods run, no more, no fewer (the workloads' own pinned tags).
    images = set(run_stack("dev").one(COMMAND).inputs["environment"]["IMAGES"].split())
    assert images == pod_images(run_stack("dev"))
    assert {image for _, image in loads} == images
    assert {image for _, image in pulls} == images - {"postgres:15.19-bookworm"}
    # In parallel: every pull began before the first one finished.
    assert max(time for time, _ in pulls) < min(pulled.values())
    for time, image in loads:
        assert image not in pulled or time > pulled[image]
    created = next(time for time, command in log if command.startswith("kind create cluster"))
    kubeconfig = next(time for time, command in log if command.startswith("kind get kubeconfig"))
    assert all(created < time < kubeconfig for time, _ in loads)


def loaded(calls):
    """{image: the platform it was loaded for} from the stand-ins' log."""
    return {command.split()[1]: command.split()[3] for _, command in calls_of(calls) if command.startswith("loaded ")}


def test_on_dockers_containerd_image_store_each_image_is_loaded_for_the_nodes_platform(cluster_script):
    """Docker Desktop's default store: `kind load docker-image` fails on a multi-platform image
    (kind#3795, as the stand-in does); the script saves the nodes' platform and loads that archive."""
    run, state, calls = cluster_script
    (state / "platform").write_text("linux/arm64\n")  # an Apple-silicon laptop
    result = run()
    assert result.returncode == 0, result.stderr
    images = set(run_stack("dev").one(COMMAND).inputs["environment"]["IMAGES"].split())
    assert loaded(calls) == {image: "linux/arm64" for image in images}
    # What the script did before: the same images through `kind load docker-image`, refused.
    old_way = subprocess.run([str(calls.parent / "bin" / "kind"), "load", "docker-image", sorted(images)[0]],
                             env={"CALLS": str(calls), "STATE": str(state), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True)
    assert old_way.returncode == 1 and "content digest" in old_way.stderr


def test_a_docker_before_platform_saves_loads_images_as_kind_always_did(cluster_script):
    run, state, calls = cluster_script
    (state / "classic-store").touch()
    result = run()
    assert result.returncode == 0, result.stderr
    assert set(loaded(calls).values()) == {"every"}


def test_an_image_that_cannot_be_saved_for_the_platform_fails_naming_it_and_the_pull_that_fixes_it(cluster_script):
    run, state, _ = cluster_script
    (state / "images").write_text("")
    (state / "unsavable").touch()
    bin_dir = state.parent / "bin"
    for tool in ("docker",):  # a save that fails for a reason other than an old Docker
        text = (bin_dir / tool).read_text().replace(
            '  "docker image save")\n', '  "docker image save")\n    [ -e "$STATE/unsavable" ] && { echo "image has no linux/amd64 content" >&2; exit 1; }\n')
        (bin_dir / tool).write_text(text)
    result = run()
    assert result.returncode == 1 and result.stdout == ""
    assert "cannot save postgres:15.19-bookworm for linux/amd64 from Docker: image has no linux/amd64 content" in result.stderr
    assert "docker pull --platform linux/amd64 postgres:15.19-bookworm" in result.stderr


def test_an_image_that_cannot_be_pulled_fails_the_tier_naming_it(cluster_script):
    run, state, _ = cluster_script
    (state / "unreachable").write_text(f"{SCHEMA_REGISTRY_IMAGE}\n")
    result = run()
    assert result.returncode == 1 and result.stdout == ""
    assert f"cannot pull {SCHEMA_REGISTRY_IMAGE}" in result.stderr and "docker login" in result.stderr


def pod_images(graph):
    """Every container and init container image of the stack's workloads."""
    images = set()
    for resource in graph.kubernetes_objects():
        spec = resource.inputs.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            images.add(container["image"])
    return images


def test_create_refuses_a_same_named_cluster_with_other_ports(cluster_script):
    run, state, _ = cluster_script
    (state / "clusters").write_text("data-ingestion-dev\n")
    (state / "ports").write_text("30432/tcp 127.0.0.1:6432\n")
    result = run()
    assert result.returncode == 1
    assert "does not publish NodePort 30432 on host port 5432" in result.stderr
    assert "kind delete cluster --name data-ingestion-dev" in result.stderr
    assert result.stdout == ""


def test_create_names_a_missing_prerequisite(cluster_script, tmp_path):
    run, _, _ = cluster_script
    os.remove(tmp_path / "bin" / "kind")
    result = run()
    assert result.returncode == 1 and "'kind' is not on PATH" in result.stderr


def test_a_preview_of_a_fresh_stack_declares_the_same_resources():
    # During the first preview the kubeconfig is unknown; typed resources must still register.
    applied = {(r.type, r.name) for r in run_stack("dev").resources}
    previewed = {(r.type, r.name) for r in run_stack("dev", preview=True).resources}
    assert previewed == applied
