{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "augrec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: fullnameOverride, else release name (+ "-augrec" unless included). */}}
{{- define "augrec.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: <fullname>-<component>, e.g. augrec-serving. */}}
{{- define "augrec.componentName" -}}
{{- printf "%s-%s" (include "augrec.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "augrec.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "augrec.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the release's pods (all components). */}}
{{- define "augrec.selectorLabels" -}}
app.kubernetes.io/name: {{ include "augrec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "serving"). */}}
{{- define "augrec.componentSelectorLabels" -}}
{{ include "augrec.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "augrec.componentLabels" -}}
{{ include "augrec.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The project image, shared by every workload; (dict "root" $ "tag" "override-or-empty"). */}}
{{- define "augrec.image" -}}
{{- $tag := .tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" .root.Values.image.repository $tag -}}
{{- end -}}

{{- define "augrec.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "augrec.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "augrec.pipelineRunnerName" -}}
{{- default (include "augrec.componentName" (dict "root" . "component" "pipeline-runner")) .Values.pipelineRunner.name -}}
{{- end -}}

{{/* Pod-level securityContext ("restricted"). */}}
{{- define "augrec.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{/* Container-level securityContext ("restricted"). */}}
{{- define "augrec.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{/* Environment shared by every augrec container: home, registry, features, Redis, storage. */}}
{{- define "augrec.commonEnv" -}}
- name: HOME
  value: /home/augrec
- name: BENTOML_HOME
  value: {{ .Values.model.home | quote }}
- name: BENTOML_DO_NOT_TRACK
  value: "true"
- name: AUGREC_FEATURE_REPO
  value: {{ .Values.features.repo | quote }}
- name: AUGREC_FEATURE_ENV
  value: {{ .Values.features.env | quote }}
- name: AUGREC_FEATURE_SERVICE
  value: {{ .Values.features.service | quote }}
- name: AUGREC_REDIS_ENDPOINT
  value: {{ printf "%s:%d" .Values.redis.host (int .Values.redis.port) | quote }}
- name: AUGREC_REDIS_SSL
  value: {{ .Values.redis.ssl | toString | quote }}
{{- if .Values.redis.passwordSecret.name }}
- name: AUGREC_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.passwordSecret.name }}
      key: {{ .Values.redis.passwordSecret.key }}
{{- else }}
- name: AUGREC_REDIS_PASSWORD
  value: ""
{{- end }}
{{- with .Values.objectStorage }}
{{- if .endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ .endpoint | quote }}
{{- end }}
{{- if .region }}
- name: AWS_DEFAULT_REGION
  value: {{ .region | quote }}
{{- end }}
{{- if .credentialsSecret.name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret.name }}
      key: {{ .credentialsSecret.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret.name }}
      key: {{ .credentialsSecret.secretAccessKeyKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Writable folders of a read-only image: /tmp and the home folder. */}}
{{- define "augrec.scratchVolumes" -}}
- name: tmp
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end -}}

{{- define "augrec.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/augrec
{{- end -}}
