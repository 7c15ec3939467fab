"""An app spec as Kubernetes objects: Deployment, Service, and when asked an Ingress and a
HorizontalPodAutoscaler, all in the department's namespace, built with the client's models.

The pod template meets Pod Security "restricted" (non-root, no privilege escalation, every
capability dropped, RuntimeDefault seccomp, read-only root filesystem) and states requests and
limits, so the tenant's admission (Pod Security, the quota, the registry policy) admits it.
Secrets are never written here: each one becomes an environment variable read from the
Kubernetes Secret ``<app>-openbao`` (key = the variable's name), and the pod template records
which OpenBao path and key fills it (annotation ``govcloud.gov.cn/openbao-secrets``), for the
sync that copies them from the department's KV mount (see :mod:`clusters.deploy.rollout`).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k

from clusters.deploy.spec import AppSpec, cpu_millis, memory_mib
from clusters.tenants import kube
from clusters.tenants.plan import DOMAIN, L_MANAGED_BY, L_PART_OF, L_TENANT, TenantPlan

L_APP = "app.kubernetes.io/name"
L_ENV = f"{DOMAIN}/environment"
L_LEVEL = f"{DOMAIN}/level"
A_SECRETS = f"{DOMAIN}/openbao-secrets"
A_APP_SPEC = f"{DOMAIN}/app-spec"
RUN_AS_USER = 10001


def secret_name(app: AppSpec) -> str:
    return f"{app.name}-openbao"


def _labels(app: AppSpec) -> dict[str, str]:
    out = {
        L_MANAGED_BY: kube.FIELD_MANAGER,
        L_PART_OF: "apps",
        L_APP: app.name,
        L_TENANT: app.department,
        L_ENV: app.environment,
    }
    if app.level:
        out[L_LEVEL] = app.level.value
    return out


def _meta(app: AppSpec, annotations: dict[str, str] | None = None) -> k.V1ObjectMeta:
    return k.V1ObjectMeta(
        name=app.name, namespace=app.namespace, labels=_labels(app), annotations=annotations
    )


def _port(app: AppSpec, ref: str | int | None) -> str | int:
    if ref is None:
        return app.ports[0].name
    return ref


def _quantities(app: AppSpec) -> k.V1ResourceRequirements:
    r = app.resources
    cpu = cpu_millis(r.cpu)
    mem = memory_mib(r.memory)
    cpu_lim = cpu_millis(r.cpu_limit) if r.cpu_limit is not None else cpu
    mem_lim = memory_mib(r.memory_limit) if r.memory_limit is not None else mem
    return k.V1ResourceRequirements(
        requests={"cpu": f"{cpu}m", "memory": f"{round(mem)}Mi"},
        limits={"cpu": f"{cpu_lim}m", "memory": f"{round(mem_lim)}Mi"},
    )


def deployment(app: AppSpec) -> k.V1Deployment:
    env = [k.V1EnvVar(name=n, value=v) for n, v in sorted(app.env.items())]
    env += [
        k.V1EnvVar(
            name=s.env,
            value_from=k.V1EnvVarSource(
                secret_key_ref=k.V1SecretKeySelector(name=secret_name(app), key=s.env)
            ),
        )
        for s in app.secrets
    ]
    probe = None
    if app.health:
        probe = k.V1Probe(
            http_get=k.V1HTTPGetAction(
                path=app.health.path, port=app.health.port, scheme=app.health.scheme
            ),
            initial_delay_seconds=app.health.initial_delay_seconds,
            period_seconds=app.health.period_seconds,
        )
    container = k.V1Container(
        name=app.name,
        image=app.image,
        ports=[
            k.V1ContainerPort(name=p.name, container_port=p.port, protocol=p.protocol)
            for p in app.ports
        ],
        env=env or None,
        resources=_quantities(app),
        readiness_probe=probe,
        liveness_probe=probe,
        security_context=k.V1SecurityContext(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=k.V1Capabilities(drop=["ALL"]),
        ),
    )
    annotations = {}
    if app.secrets:
        annotations[A_SECRETS] = json.dumps(
            {s.env: f"{s.path}#{s.key}" for s in app.secrets}, sort_keys=True
        )
    selector = {L_APP: app.name}
    return k.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=_meta(app),
        spec=k.V1DeploymentSpec(
            # with an autoscaler the replica count is its business, not the apply's
            replicas=None if app.autoscale else app.replicas,
            selector=k.V1LabelSelector(match_labels=selector),
            revision_history_limit=10,
            strategy=k.V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=k.V1RollingUpdateDeployment(max_surge=1, max_unavailable=0),
            ),
            template=k.V1PodTemplateSpec(
                metadata=k.V1ObjectMeta(labels=_labels(app), annotations=annotations or None),
                spec=k.V1PodSpec(
                    automount_service_account_token=False,
                    enable_service_links=False,
                    security_context=k.V1PodSecurityContext(
                        run_as_non_root=True,
                        run_as_user=RUN_AS_USER,
                        run_as_group=RUN_AS_USER,
                        fs_group=RUN_AS_USER,
                        seccomp_profile=k.V1SeccompProfile(type="RuntimeDefault"),
                    ),
                    # replicas spread over the nodes where they can be (soft: a one-node
                    # cloud still runs them all)
                    topology_spread_constraints=[
                        k.V1TopologySpreadConstraint(
                            max_skew=1,
                            topology_key="kubernetes.io/hostname",
                            when_unsatisfiable="ScheduleAnyway",
                            label_selector=k.V1LabelSelector(match_labels=selector),
                        )
                    ],
                    containers=[container],
                    volumes=[
                        k.V1Volume(
                            name="tmp", empty_dir=k.V1EmptyDirVolumeSource(size_limit="64Mi")
                        )
                    ],
                ),
            ),
        ),
    )


def _mount_tmp(d: k.V1Deployment) -> k.V1Deployment:
    """The root filesystem is read-only: /tmp is a small emptyDir."""
    assert d.spec is not None and d.spec.template.spec is not None
    d.spec.template.spec.containers[0].volume_mounts = [
        k.V1VolumeMount(name="tmp", mount_path="/tmp")
    ]
    return d


def service(app: AppSpec) -> k.V1Service:
    return k.V1Service(
        api_version="v1",
        kind="Service",
        metadata=_meta(app),
        spec=k.V1ServiceSpec(
            type="ClusterIP",
            selector={L_APP: app.name},
            ports=[
                k.V1ServicePort(name=p.name, port=p.port, target_port=p.name, protocol=p.protocol)
                for p in app.ports
            ],
        ),
    )


def ingress(app: AppSpec, plan: TenantPlan) -> k.V1Ingress | None:
    if app.ingress is None:
        return None
    ing = app.ingress
    port = _port(app, ing.port)
    backend_port = (
        k.V1ServiceBackendPort(number=port)
        if isinstance(port, int)
        else k.V1ServiceBackendPort(name=port)
    )
    return k.V1Ingress(
        api_version="networking.k8s.io/v1",
        kind="Ingress",
        metadata=_meta(app),
        spec=k.V1IngressSpec(
            ingress_class_name=ing.class_name or plan.options.ingress_classes[0],
            rules=[
                k.V1IngressRule(
                    host=ing.host,
                    http=k.V1HTTPIngressRuleValue(
                        paths=[
                            k.V1HTTPIngressPath(
                                path=ing.path,
                                path_type="Prefix",
                                backend=k.V1IngressBackend(
                                    service=k.V1IngressServiceBackend(
                                        name=app.name, port=backend_port
                                    )
                                ),
                            )
                        ]
                    ),
                )
            ],
        ),
    )


def autoscaler(app: AppSpec) -> k.V2HorizontalPodAutoscaler | None:
    if app.autoscale is None:
        return None
    a = app.autoscale
    return k.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=_meta(app),
        spec=k.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=app.name
            ),
            min_replicas=a.min,
            max_replicas=a.max,
            behavior=(
                None
                if a.scale_down_seconds is None
                else k.V2HorizontalPodAutoscalerBehavior(
                    scale_down=k.V2HPAScalingRules(
                        stabilization_window_seconds=a.scale_down_seconds
                    )
                )
            ),
            metrics=[
                k.V2MetricSpec(
                    type="Resource",
                    resource=k.V2ResourceMetricSource(
                        name="cpu",
                        target=k.V2MetricTarget(
                            type="Utilization", average_utilization=a.cpu_percent
                        ),
                    ),
                )
            ],
        ),
    )


def build(app: AppSpec, plan: TenantPlan) -> list[dict[str, Any]]:
    """The app's objects, in the order they are applied (Service first, so the Deployment's
    pods find it; the autoscaler after the Deployment it scales)."""
    models: list[Any] = [service(app), _mount_tmp(deployment(app))]
    models += [m for m in (autoscaler(app), ingress(app, plan)) if m is not None]
    return [kube.to_dict(m) for m in models]
