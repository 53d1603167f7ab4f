{{/* The chart's name, or nameOverride. */}}
{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: names every object. */}}
{{- define "switchyard.fullname" -}}
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

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" . }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- end -}}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{- define "switchyard.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "switchyard.fullname" .)) -}}
{{- end -}}

{{- define "switchyard.policyConfigMapName" -}}
{{- .Values.policyBundle.existingConfigMap | default (printf "%s-policy" (include "switchyard.fullname" .)) -}}
{{- end -}}

{{/* A key id as it appears in an environment variable name: SWITCHYARD_KEY_<this>_SHA256. */}}
{{- define "switchyard.envId" -}}
{{- regexReplaceAll "[^A-Z0-9]" (upper (toString .)) "_" -}}
{{- end -}}

{{/* Where the gateway keeps local state and the policy bundle, in the container. */}}
{{- define "switchyard.dataDir" -}}/var/lib/switchyard{{- end -}}
{{- define "switchyard.configDir" -}}/etc/switchyard/config{{- end -}}
{{- define "switchyard.policyDir" -}}/etc/switchyard/policy{{- end -}}

{{/*
The keys[] (or admin.keys[]) entries of config for virtualKeys (adminKeys):
each sha256 is an environment variable from the Secret.
*/}}
{{- define "switchyard.keyEntries" -}}
{{- $prefix := .prefix -}}
{{- $out := list -}}
{{- $seen := dict -}}
{{- range .keys -}}
{{- if not .id -}}
{{- fail (printf "%s: every key needs an id" $prefix) -}}
{{- end -}}
{{- $var := printf "%s_%s_SHA256" $prefix (include "switchyard.envId" .id) -}}
{{- if hasKey $seen $var -}}
{{- fail (printf "key ids %q and %q both map to %s: make them differ in letters or digits" (get $seen $var) .id $var) -}}
{{- end -}}
{{- $_ := set $seen $var .id -}}
{{- $k := dict "id" .id "sha256" (printf "${%s}" $var) -}}
{{- range $f, $v := . -}}
{{- if and (ne $f "id") (ne $f "sha256") $v -}}
{{- $_ := set $k $f $v -}}
{{- end -}}
{{- end -}}
{{- $out = append $out $k -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The gateway's config.yaml: .Values.config with the fields the chart owns. */}}
{{- define "switchyard.config" -}}
{{- $cfg := deepCopy (.Values.config | default (dict)) -}}
{{- $server := get $cfg "server" | default (dict) -}}
{{- $_ := set $server "listen" (printf ":%v" .Values.service.targetPort) -}}
{{- $_ := set $cfg "server" $server -}}
{{- $_ := set $cfg "data_dir" (include "switchyard.dataDir" .) -}}
{{- if .Values.policyBundle.enabled -}}
{{- $policy := get $cfg "policy" | default (dict) -}}
{{- $_ := set $policy "bundle" (include "switchyard.policyDir" .) -}}
{{- $_ := set $cfg "policy" $policy -}}
{{- end -}}
{{- with .Values.virtualKeys -}}
{{- $_ := set $cfg "keys" (include "switchyard.keyEntries" (dict "prefix" "SWITCHYARD_KEY" "keys" .) | fromJsonArray) -}}
{{- end -}}
{{- with .Values.adminKeys -}}
{{- $admin := get $cfg "admin" | default (dict) -}}
{{- $_ := set $admin "keys" (include "switchyard.keyEntries" (dict "prefix" "SWITCHYARD_ADMIN_KEY" "keys" .) | fromJsonArray) -}}
{{- $_ := set $cfg "admin" $admin -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- if not .Values.redis.addrs -}}
{{- fail "redis.enabled needs redis.addrs" -}}
{{- end -}}
{{- $redis := deepCopy (.Values.redis.extra | default (dict)) -}}
{{- $_ := set $redis "addrs" .Values.redis.addrs -}}
{{- with .Values.redis.masterName -}}{{- $_ := set $redis "master_name" . -}}{{- end -}}
{{- with .Values.redis.username -}}{{- $_ := set $redis "username" . -}}{{- end -}}
{{- if or .Values.redis.password .Values.redis.passwordFromSecret -}}
{{- $_ := set $redis "password" "${REDIS_PASSWORD}" -}}
{{- end -}}
{{- $quotas := get $cfg "quotas" | default (dict) -}}
{{- $_ := set $quotas "redis" $redis -}}
{{- if .Values.redis.quotas -}}{{- $_ := set $quotas "store" "redis" -}}{{- end -}}
{{- $_ := set $cfg "quotas" $quotas -}}
{{- if .Values.redis.ledger -}}
{{- $ledger := get $cfg "ledger" | default (dict) -}}
{{- $_ := set $ledger "store" "redis" -}}
{{- $_ := set $cfg "ledger" $ledger -}}
{{- end -}}
{{- if .Values.redis.responses -}}
{{- $responses := get $cfg "responses" | default (dict) -}}
{{- $_ := set $responses "store" "redis" -}}
{{- $_ := set $cfg "responses" $responses -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The Secret's entries, name -> value: secrets.env, the key hashes and
REDIS_PASSWORD. Only used when the chart makes the Secret.
*/}}
{{- define "switchyard.secretData" -}}
{{- $data := dict -}}
{{- range $k, $v := .Values.secrets.env -}}
{{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_]*$" $k) -}}
{{- fail (printf "secrets.env: %q is not an environment variable name" $k) -}}
{{- end -}}
{{- if $v -}}{{- $_ := set $data $k (toString $v) -}}{{- end -}}
{{- end -}}
{{- range $set := list (list "SWITCHYARD_KEY" .Values.virtualKeys "virtualKeys") (list "SWITCHYARD_ADMIN_KEY" .Values.adminKeys "adminKeys") -}}
{{- range (index $set 1) -}}
{{- $var := printf "%s_%s_SHA256" (index $set 0) (include "switchyard.envId" .id) -}}
{{- if not .sha256 -}}
{{- fail (printf "%s: key %q has no sha256 (`switchyard key hash KEY` prints it), and secrets.existingSecret is not set to provide %s" (index $set 2) .id $var) -}}
{{- end -}}
{{- if not (regexMatch "^[0-9a-f]{64}$" (toString .sha256)) -}}
{{- fail (printf "%s: key %q: sha256 must be 64 lowercase hex digits" (index $set 2) .id) -}}
{{- end -}}
{{- $_ := set $data $var (toString .sha256) -}}
{{- end -}}
{{- end -}}
{{- if .Values.redis.password -}}
{{- $_ := set $data "REDIS_PASSWORD" (toString .Values.redis.password) -}}
{{- end -}}
{{- toJson $data -}}
{{- end -}}

{{/*
server.shutdown_timeout in whole seconds, rounded up, or "" when its form
is not one this check reads (it is then not checked).
*/}}
{{- define "switchyard.shutdownSeconds" -}}
{{- $d := toString (dig "server" "shutdown_timeout" "30s" (.Values.config | default (dict))) -}}
{{- if regexMatch "^[0-9]+s$" $d -}}
{{- trimSuffix "s" $d -}}
{{- else if regexMatch "^[0-9]+m$" $d -}}
{{- mul (atoi (trimSuffix "m" $d)) 60 -}}
{{- else if regexMatch "^[0-9]+m[0-9]+s$" $d -}}
{{- $p := splitList "m" (trimSuffix "s" $d) -}}
{{- add (mul (atoi (index $p 0)) 60) (atoi (index $p 1)) -}}
{{- else if regexMatch "^[0-9]+ms$" $d -}}
{{- div (add (atoi (trimSuffix "ms" $d)) 999) 1000 -}}
{{- end -}}
{{- end -}}
