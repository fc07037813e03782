// Package image builds the example services' container images without a
// Docker daemon, with go-containerregistry: a static binary on an empty
// base plus what a static binary needs (CA certificates, a passwd entry for
// the non-root user, /tmp), the user, entrypoint, port and OCI labels set
// (title, source, version, revision, created, licenses).
//
// WriteDockerArchive writes one as a docker-archive tarball, the format of
// "docker save": "docker load -i" and "kind load image-archive" take it.
// WriteOCILayout writes one as an OCI image layout directory, which skopeo,
// crane, podman and containerd read ("skopeo copy oci:DIR:TAG docker://...").
package image
