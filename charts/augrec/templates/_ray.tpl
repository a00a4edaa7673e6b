{{/*
The RayCluster spec shared by the RayCluster and the RayJob templates: a CPU-only head and
the worker groups of .Values.ray.workerGroups. Only a group with gpus > 0 requests
nvidia.com/gpu and gets the GPU pool's nodeSelector, tolerations and affinity.
*/}}
{{- define "augrec.ray.volumes" -}}
{{ include "augrec.scratchVolumes" .root }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .root.Values.ray.shmSize }}
- name: registry
  {{- if .root.Values.model.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .root.Values.model.existingClaim }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end -}}

{{- define "augrec.ray.mounts" -}}
{{ include "augrec.scratchMounts" .root }}
- name: dshm
  mountPath: /dev/shm
- name: registry
  mountPath: {{ .root.Values.model.home }}
{{- end -}}

{{- define "augrec.ray.clusterSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
rayVersion: {{ $v.ray.version | quote }}
enableInTreeAutoscaling: {{ $v.ray.autoscaling.enabled }}
{{- if $v.ray.autoscaling.enabled }}
autoscalerOptions:
  idleTimeoutSeconds: {{ $v.ray.autoscaling.idleTimeoutSeconds }}
  upscalingMode: {{ $v.ray.autoscaling.upscalingMode }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  env:
    - name: HOME
      value: /tmp
  securityContext:
    {{- include "augrec.securityContext" $root | nindent 4 }}
{{- end }}
headGroupSpec:
  rayStartParams:
    dashboard-host: "0.0.0.0"
    {{- range $k, $val := $v.ray.head.rayStartParams }}
    {{ $k }}: {{ $val | quote }}
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "augrec.componentSelectorLabels" (dict "root" $root "component" "ray") | nindent 8 }}
    spec:
      {{- if not $v.ray.autoscaling.enabled }}
      {{- /* With autoscaling, KubeRay gives the head its own ServiceAccount and RBAC (the
      autoscaler sidecar scales worker pods); ours would get those rights too. */}}
      serviceAccountName: {{ include "augrec.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- end }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "augrec.podSecurityContext" $root | nindent 8 }}
      containers:
        - name: ray-head
          image: {{ include "augrec.image" (dict "root" $root "tag" "") }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          ports:
            - name: gcs-server
              containerPort: 6379
            - name: dashboard
              containerPort: 8265
            - name: client
              containerPort: 10001
          env:
            {{- include "augrec.commonEnv" $root | nindent 12 }}
          resources:
            {{- toYaml $v.ray.head.resources | nindent 12 }}
          securityContext:
            {{- include "augrec.securityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "augrec.ray.mounts" . | nindent 12 }}
      volumes:
        {{- include "augrec.ray.volumes" . | nindent 8 }}
      {{- with $v.ray.head.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.ray.head.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
workerGroupSpecs:
  {{- range $g := $v.ray.workerGroups }}
  {{- $res := deepCopy $g.resources }}
  {{- if gt (int $g.gpus) 0 }}
  {{- $limits := get $res "limits" | default dict }}
  {{- $_ := set $limits "nvidia.com/gpu" (int $g.gpus) }}
  {{- $_ := set $res "limits" $limits }}
  {{- end }}
  - groupName: {{ $g.name }}
    replicas: {{ $g.replicas }}
    minReplicas: {{ $g.minReplicas }}
    maxReplicas: {{ $g.maxReplicas }}
    rayStartParams: {}
    template:
      metadata:
        labels:
          {{- include "augrec.componentSelectorLabels" (dict "root" $root "component" "ray") | nindent 10 }}
      spec:
        serviceAccountName: {{ include "augrec.serviceAccountName" $root }}
        automountServiceAccountToken: false
        {{- with $v.imagePullSecrets }}
        imagePullSecrets:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        securityContext:
          {{- include "augrec.podSecurityContext" $root | nindent 10 }}
        containers:
          - name: ray-worker
            image: {{ include "augrec.image" (dict "root" $root "tag" $g.imageTag) }}
            imagePullPolicy: {{ $v.image.pullPolicy }}
            env:
              {{- include "augrec.commonEnv" $root | nindent 14 }}
            resources:
              {{- toYaml $res | nindent 14 }}
            securityContext:
              {{- include "augrec.securityContext" $root | nindent 14 }}
            volumeMounts:
              {{- include "augrec.ray.mounts" $ | nindent 14 }}
        volumes:
          {{- include "augrec.ray.volumes" $ | nindent 10 }}
        {{- if gt (int $g.gpus) 0 }}
        {{- with $g.nodeSelector }}
        nodeSelector:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with $g.tolerations }}
        tolerations:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- with $g.affinity }}
        affinity:
          {{- toYaml . | nindent 10 }}
        {{- end }}
        {{- end }}
  {{- end }}
{{- end -}}
