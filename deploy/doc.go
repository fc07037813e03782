// Package deploy holds the example system's Kubernetes manifests (k8s/),
// its Dockerfile and the image builder (cmd/image, image), and, in its
// tests, their validation: make deploy-validate. The manifests need
// Kubernetes 1.30 or later (the preStop sleep action); see README.md.
package deploy
