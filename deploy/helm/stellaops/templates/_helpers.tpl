{{/* Name prefix of every object: the release name, or fullnameOverride. */}}
{{- define "stellaops.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The settings every service reads (ConfigMap <release>-config), and the migrations hook's copy of them. */}}
{{- define "stellaops.configData" -}}
STELLAOPS_PROFILE: {{ .Values.global.profile | quote }}
STELLAOPS_RELEASE: {{ .Values.global.release.version | quote }}
STELLAOPS_CHANNEL: {{ .Values.global.release.channel | quote }}
STELLAOPS_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
{{- with .Values.database }}
{{- if .host }}
PGHOST: {{ .host | quote }}
{{- end }}
{{- if .port }}
PGPORT: {{ .port | quote }}
{{- end }}
{{- if .name }}
PGDATABASE: {{ .name | quote }}
{{- end }}
{{- if .user }}
PGUSER: {{ .user | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The credentials (Secret <release>-credentials), and the migrations hook's copy of them. */}}
{{- define "stellaops.credentialsData" -}}
{{- range $key, $value := .Values.credentials }}
{{ $key }}: {{ toString $value | b64enc | quote }}
{{- end }}
{{- end -}}

{{- define "stellaops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: stellaops
stellaops.org/release: {{ .Values.global.release.version | quote }}
stellaops.org/channel: {{ .Values.global.release.channel | quote }}
{{- end -}}

{{/*
An image reference from values: a string, or a mapping with repository, optional registry and tag,
and digest. With "pinned" true the reference must carry a sha256 digest, or rendering fails.
Call with (dict "image" VALUE "where" "services.authority.image" "pinned" true).
*/}}
{{- define "stellaops.image" -}}
{{- $image := .image -}}
{{- $ref := "" -}}
{{- if kindIs "string" $image -}}
{{- $ref = $image -}}
{{- else if kindIs "map" $image -}}
{{- $repository := required (printf "%s.repository is required" .where) $image.repository -}}
{{- if $image.registry -}}{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $repository -}}{{- end -}}
{{- $ref = $repository -}}
{{- if $image.tag -}}{{- $ref = printf "%s:%s" $ref (toString $image.tag) -}}{{- end -}}
{{- if $image.digest -}}{{- $ref = printf "%s@%s" $ref $image.digest -}}{{- end -}}
{{- end -}}
{{- if and .pinned (not (regexMatch "@sha256:[0-9a-f]{64}$" $ref)) -}}
{{- fail (printf "%s must be pinned by digest (repository@sha256:<64 hex>), got %q" .where $ref) -}}
{{- end -}}
{{- $ref -}}
{{- end -}}
