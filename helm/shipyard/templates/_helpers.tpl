{{/*
Shared helpers: names, labels, images, the restricted security contexts and the few values every
component derives. Component templates call these with (dict "ctx" $ "component" "<name>").
*/}}

{{- define "shipyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<component>; 40 + 23 characters stay within a DNS label. */}}
{{- define "shipyard.name" -}}
{{- printf "%s-%s" (include "shipyard.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shipyard.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "shipyard.labels" -}}
{{ include "shipyard.selectorLabels" . }}
app.kubernetes.io/part-of: shipyard
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* The Shipyard image: digest pins win over tags. */}}
{{- define "shipyard.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Triton's NGC image, likewise pinned by digest when one is given. */}}
{{- define "shipyard.tritonImage" -}}
{{- $image := .Values.triton.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $image.tag -}}
{{- end -}}
{{- end -}}

{{/*
Pod Security "restricted" for every pod: non-root, RuntimeDefault seccomp. uid 10001 is the
Shipyard image's user; Triton's NGC image runs under it too (its files are world-readable and
HOME points at a writable emptyDir), a high uid that maps to no host account.
*/}}
{{- define "shipyard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Every container: no privilege escalation, no capabilities, read-only root filesystem (each
writable path is an explicit emptyDir). */}}
{{- define "shipyard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod-level settings shared by every workload. */}}
{{- define "shipyard.podCommon" -}}
serviceAccountName: {{ include "shipyard.name" . }}
{{- /* Only the rollout analysis talks to the API server; everyone else has no token at all. */}}
automountServiceAccountToken: {{ .token | default false }}
enableServiceLinks: false
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "shipyard.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "shipyard.name" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "shipyard.labels" . | nindent 4 }}
  {{- with .gsa }}
  annotations:
    # GKE workload identity: this Kubernetes account acts as that Google service account.
    iam.gke.io/gcp-service-account: {{ . }}
  {{- end }}
automountServiceAccountToken: false
{{- end -}}

{{- define "shipyard.routingConfigMap" -}}
{{- include "shipyard.name" (dict "ctx" . "component" "routing") -}}
{{- end -}}

{{/*
The routing file: exactly shipyard.routing's shape. Versions are strings there; `--set` turns
"4" into a number, so they are stringified here.
*/}}
{{- define "shipyard.routingTable" -}}
{{- $models := dict -}}
{{- range $name, $route := .Values.models -}}
{{- $out := dict "stable" (dict "version" (toString $route.stable.version)) -}}
{{- with $route.canary -}}
{{- if eq (toString .version) (toString $route.stable.version) -}}
{{- fail (printf "models.%s: canary and stable are both version %v" $name .version) -}}
{{- end -}}
{{- $canary := dict "version" (toString .version) "weight" (.weight | default 0) -}}
{{- with .analysis -}}
{{- $previous := 0.0 -}}
{{- range .steps -}}
{{- if le (float64 .) $previous -}}
{{- fail (printf "models.%s.canary.analysis.steps must increase (got %v after %v)" $name . $previous) -}}
{{- end -}}
{{- $previous = float64 . -}}
{{- end -}}
{{- $_ := set $canary "analysis" . -}}
{{- end -}}
{{- $_ := set $out "canary" $canary -}}
{{- end -}}
{{- $_ := set $models $name $out -}}
{{- end -}}
{{- toYaml (dict "models" $models) -}}
{{- end -}}

{{/* Versions each Triton pool must serve, per model: the stable one, then the canary. */}}
{{- define "shipyard.tritonVersions" -}}
{{- $versions := dict -}}
{{- range $name, $route := .Values.models -}}
{{- $list := list (int (toString $route.stable.version)) -}}
{{- with $route.canary }}{{ $list = append $list (int (toString .version)) }}{{ end -}}
{{- $_ := set $versions $name $list -}}
{{- end -}}
{{- toJson $versions -}}
{{- end -}}

{{/* URL of a Triton pool's Service in the gateway's transport (http://…:8000 or
grpc://…:8001), or "" when the pool is off (the gateway then skips that hop). */}}
{{- define "shipyard.tritonUrl" -}}
{{- $pool := index .ctx.Values.triton .pool -}}
{{- if $pool.enabled -}}
{{- printf "%s://%s.%s.svc:%s" .ctx.Values.gateway.tritonTransport (include "shipyard.name" (dict "ctx" .ctx "component" (printf "triton-%s" .pool))) .ctx.Release.Namespace (include "shipyard.tritonPort" .ctx) -}}
{{- end -}}
{{- end -}}

{{/* The Triton port of the gateway's transport: 8000 (HTTP) or 8001 (gRPC). */}}
{{- define "shipyard.tritonPort" -}}
{{- ternary "8000" "8001" (eq .Values.gateway.tritonTransport "http") -}}
{{- end -}}

{{- define "shipyard.featureStorageClaim" -}}
{{- .Values.featureStore.storage.existingClaim | default (include "shipyard.name" (dict "ctx" . "component" "feature-data")) -}}
{{- end -}}

{{/* The gateway's model repository mount: GCS through the FUSE CSI driver, or the claim. */}}
{{- define "shipyard.modelRepositoryVolume" -}}
- name: model-repository
{{- if eq .Values.modelRepository.source "gcs" }}
  csi:
    driver: gcsfuse.csi.storage.gke.io
    readOnly: true
    volumeAttributes:
      bucketName: {{ .Values.modelRepository.gcs.bucket }}
      mountOptions: {{ printf "implicit-dirs,only-dir=%s" .Values.modelRepository.gcs.prefix | quote }}
{{- else }}
  persistentVolumeClaim:
    claimName: {{ .Values.modelRepository.volume.claimName }}
    readOnly: true
{{- end }}
{{- end -}}

{{/* The online store's connection, as the settings and Feast's feature_store.redis.yaml read it.
SHIPYARD_REDIS_HOST and SHIPYARD_PORTS__REDIS are the settings the gateway's reader dials; the
Feast CLI reads SHIPYARD_REDIS_ADDRESS itself. */}}
{{- define "shipyard.redisEnv" -}}
- name: SHIPYARD_PROFILE
  value: redis
- name: SHIPYARD_REDIS_HOST
  value: {{ .Values.featureStore.redis.host | quote }}
- name: SHIPYARD_PORTS__REDIS
  value: {{ .Values.featureStore.redis.port | quote }}
- name: SHIPYARD_REDIS_ADDRESS
  value: {{ printf "%s:%v" .Values.featureStore.redis.host .Values.featureStore.redis.port | quote }}
{{- with .Values.featureStore.redis.existingSecret }}
- name: SHIPYARD_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: redis-password
{{- end }}
{{- end -}}

{{/* NetworkPolicy peer selecting one component of this release. */}}
{{- define "shipyard.peer" -}}
- podSelector:
    matchLabels:
      {{- include "shipyard.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* A NetworkPolicy for one component: (dict "ctx" $ "component" c "ingress" list "egress"
list); the default-deny policy closes everything else. */}}
{{- define "shipyard.networkPolicy" -}}
{{- if .ctx.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "shipyard.name" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "shipyard.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "shipyard.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- toYaml (.ingress | default list) | nindent 4 }}
  egress:
    {{- toYaml (.egress | default list) | nindent 4 }}
{{- end }}
{{- end -}}

{{/* Peer list selecting one component of this release, as a value (for the policies). */}}
{{- define "shipyard.peerOf" -}}
{{- toJson (list (dict "podSelector" (dict "matchLabels" (fromYaml (include "shipyard.selectorLabels" .))))) -}}
{{- end -}}
