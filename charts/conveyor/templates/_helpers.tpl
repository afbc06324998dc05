{{/*
The chart's name, truncated to 63 characters (a label value's limit).
*/}}
{{- define "conveyor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name, unless it already contains the
chart's name (then that alone). Truncated to 63 characters.
*/}}
{{- define "conveyor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Cluster-scoped objects (ClusterRoles, ClusterRoleBindings) carry the release
namespace in their name, so that releases in several namespaces (one per team,
with watchNamespaces) never collide.
*/}}
{{- define "conveyor.clusterName" -}}
{{- printf "%s-%s" (include "conveyor.fullname" .) .Release.Namespace | trunc 200 | trimSuffix "-" }}
{{- end }}

{{/*
The `job` label of the operator's series as this chart's ServiceMonitor scrapes them
(its jobLabel): the release's full name and namespace, unique in a cluster. The rules
select the release's series with it unless metrics.prometheusRule.selector says otherwise.
*/}}
{{- define "conveyor.metricsJob" -}}
{{- printf "%s-%s" (include "conveyor.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conveyor.metricsSelector" -}}
{{- .Values.metrics.prometheusRule.selector | default (printf "job=%q" (include "conveyor.metricsJob" .)) }}
{{- end }}

{{- define "conveyor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conveyor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conveyor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "conveyor.labels" -}}
helm.sh/chart: {{ include "conveyor.chart" . }}
{{ include "conveyor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: conveyor
{{- end }}

{{- define "conveyor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "conveyor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "conveyor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The namespace `helm test` runs its BackgroundJob in: the release namespace if
the operator watches it, else the first watched namespace.
*/}}
{{- define "conveyor.testNamespace" -}}
{{- if or (not .Values.watchNamespaces) (has .Release.Namespace .Values.watchNamespaces) }}
{{- .Release.Namespace }}
{{- else }}
{{- first .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{/*
What the operator does with the API, and nothing more (no wildcard):
  backgroundjobs   get/list/watch (indices), create (runs of recurring jobs),
                   delete (ttlSecondsAfterFinished, history limits, Replace)
  .../status       patch (phase, attempts, conditions, history)
  jobqueues        get/list/watch; .../status patch (counts by phase)
  pods             get/list/watch, create (one per attempt), delete (deadline,
                   suspend, replace); pods/log get (the failure's log tail)
  events           create (Normal/Warning events on the jobs), patch (a repeated
                   event's count and lastTimestamp, as client-go's recorder does)
PriorityClasses are cluster-scoped: see the priorityclasses ClusterRole.
*/}}
{{- define "conveyor.operatorRules" -}}
- apiGroups: [conveyor.dev]
  resources: [backgroundjobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [conveyor.dev]
  resources: [backgroundjobs/status]
  verbs: [patch]
- apiGroups: [conveyor.dev]
  resources: [jobqueues]
  verbs: [get, list, watch]
- apiGroups: [conveyor.dev]
  resources: [jobqueues/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/*
The dashboard's own labels: another app.kubernetes.io/name than the
operator's, so that neither the operator's Deployment, its PDB nor its metrics
Service selects the dashboard's pod.
*/}}
{{- define "conveyor.dashboardName" -}}
{{- printf "%s-dashboard" (include "conveyor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "conveyor.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "conveyor.name" . }}-dashboard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "conveyor.dashboardLabels" -}}
helm.sh/chart: {{ include "conveyor.chart" . }}
{{ include "conveyor.dashboardSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: conveyor
app.kubernetes.io/component: dashboard
{{- end }}

{{- define "conveyor.dashboardServiceAccountName" -}}
{{- if .Values.dashboard.serviceAccount.create }}
{{- default (include "conveyor.dashboardName" .) .Values.dashboard.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.dashboard.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
What the dashboard reads, and with dashboard.actions what it writes:
  backgroundjobs, jobqueues  get/list/watch (its one list+watch each, a job's page)
  pods                       list (a job's attempts); pods/log get (their log tails)
  events                     list (a job's events)
  with actions: backgroundjobs patch (the annotations replay, promote, run-now,
                cancel), jobqueues patch (spec.paused)
*/}}
{{- define "conveyor.dashboardRules" -}}
- apiGroups: [conveyor.dev]
  resources: [backgroundjobs, jobqueues]
  verbs: [get, list, watch{{ if .Values.dashboard.actions }}, patch{{ end }}]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [list]
{{- end }}
