{{/* Egress every augrec pod needs: DNS, the Redis online store, object storage. */}}
{{- define "augrec.np.egressCommon" }}
    # DNS.
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
      ports:
        - {protocol: UDP, port: 53}
        - {protocol: TCP, port: 53}
    # The Redis online store.
    - ports:
        - {protocol: TCP, port: {{ .Values.redis.port }}}
      {{- with .Values.networkPolicy.redisTo }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    # Object storage (HTTPS, or the port of an in-cluster S3 endpoint).
    - ports:
        - {protocol: TCP, port: {{ .Values.objectStorage.port }}}
      {{- with .Values.networkPolicy.objectStorageTo }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
