{{/* Shared naming, labels and pod fragments for every component. */}}

{{- define "dmt.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "dmt.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dmt.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dmt.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "dmt.mqttUrl" -}}
{{- if .Values.mqtt.url -}}
{{ .Values.mqtt.url }}
{{- else -}}
ssl://{{ include "dmt.fullname" . }}-broker:{{ .Values.broker.ports.internal }}
{{- end -}}
{{- end -}}

{{/* Environment every agent shares: instance id, log level, broker, database, secrets. */}}
{{- define "dmt.commonEnv" -}}
- name: DMT_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: DMT_LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: DMT_MQTT_URL
  value: {{ include "dmt.mqttUrl" .root | quote }}
- name: DMT_MQTT_USERNAME
  value: {{ printf "svc:%s" .component | quote }}
- name: DMT_MQTT_PASSWORD_FILE
  value: /etc/dmt/mqtt/{{ .component }}
- name: DMT_MQTT_CA_FILE
  value: /etc/dmt/mqtt-tls/ca.crt
- name: DMT_DB_DSN_FILE
  value: /etc/dmt/db/{{ .root.Values.database.dsnSecret.key }}
- name: DMT_SECRETS_BACKEND
  value: {{ .root.Values.secrets.backend | quote }}
{{- if eq .root.Values.secrets.backend "vault" }}
- name: DMT_VAULT_ADDRESS
  value: {{ required "secrets.vault.address is required with the vault back end" .root.Values.secrets.vault.address | quote }}
- name: DMT_VAULT_MOUNT_PATH
  value: {{ .root.Values.secrets.vault.mountPath | quote }}
- name: DMT_VAULT_K8S_ROLE
  value: {{ .root.Values.secrets.vault.kubernetesRole | quote }}
- name: DMT_VAULT_K8S_JWT_FILE
  value: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- else }}
- name: DMT_SECRETS_KEY_FILE
  value: /etc/dmt/secrets-key/key
- name: DMT_SECRETS_KEY_ID_FILE
  value: /etc/dmt/secrets-key/key_id
{{- end }}
{{- range $k, $v := .extraEnv }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "dmt.commonMounts" -}}
- name: tmp
  mountPath: /tmp
- name: mqtt-credentials
  mountPath: /etc/dmt/mqtt
  readOnly: true
- name: mqtt-tls
  mountPath: /etc/dmt/mqtt-tls
  readOnly: true
- name: db
  mountPath: /etc/dmt/db
  readOnly: true
{{- if ne .Values.secrets.backend "vault" }}
- name: secrets-key
  mountPath: /etc/dmt/secrets-key
  readOnly: true
{{- end }}
{{- end -}}

{{- define "dmt.commonVolumes" -}}
- name: tmp
  emptyDir: {}
- name: mqtt-credentials
  secret:
    secretName: {{ .Values.mqtt.agentCredentialsSecret }}
- name: mqtt-tls
  secret:
    secretName: {{ .Values.mqtt.caSecret }}
    items:
      - key: ca.crt
        path: ca.crt
- name: db
  secret:
    secretName: {{ .Values.database.dsnSecret.name }}
{{- if ne .Values.secrets.backend "vault" }}
- name: secrets-key
  secret:
    secretName: {{ .Values.secrets.embedded.keySecret }}
{{- end }}
{{- end -}}

{{- define "dmt.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
serviceAccountName: {{ include "dmt.fullname" . }}
{{- end -}}
