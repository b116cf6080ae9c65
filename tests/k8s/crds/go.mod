// The CRDs the Kubernetes tests install, taken from their projects' own Go modules (through
// the Go module proxy): Gateway API's standard-channel HTTPRoute, Argo Rollouts' Rollout.
// Only downloaded (scripts/k8s-binaries copies the YAML out), never built.
module releasedeck.test/crds

go 1.26.0

require (
	github.com/argoproj/argo-rollouts v1.10.1
	sigs.k8s.io/gateway-api v1.6.3
)
