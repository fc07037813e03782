package deploy_test

import (
	"strings"
	"testing"
)

// The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels).
var recommended = []string{
	"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
	"app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
}

// checkLabels checks the recommended labels on every object of o and on
// every pod template: all six set, part-of and managed-by as given, a
// template labelled as its workload, a workload named by its name label and
// versioned as its image's tag, every other object versioned as the
// workload of its name (or, without one, as the services), and no version
// in a selector, which is immutable.
func checkLabels(t *testing.T, what string, o objects, partOf string) {
	t.Helper()
	if len(o.all) == 0 {
		t.Fatalf("%s: no objects", what)
	}
	versionOf := map[string]string{} // name label -> the workload's version
	serviceVersion := ""
	for _, ob := range o.all {
		if ob.template == nil {
			continue
		}
		v := ob.labels["app.kubernetes.io/version"]
		versionOf[ob.labels["app.kubernetes.io/name"]] = v
		if ob.labels["app.kubernetes.io/component"] == "service" {
			serviceVersion = v
		}
		if ob.labels["app.kubernetes.io/name"] != ob.name {
			t.Errorf("%s: %s is named %q by its label", what, ob, ob.labels["app.kubernetes.io/name"])
		}
		for _, img := range ob.images {
			tag := img[strings.LastIndex(img, ":")+1:]
			if !strings.Contains(img, ":") || (tag != v && !strings.HasPrefix(tag, v+"-")) {
				t.Errorf("%s: %s has version %q, its image is %s", what, ob, v, img)
			}
		}
		for k := range ob.selector {
			if k == "app.kubernetes.io/version" {
				t.Errorf("%s: %s selects by version: a selector is immutable, a version is not", what, ob)
			}
		}
	}
	for _, ob := range o.all {
		for _, k := range recommended {
			if ob.labels[k] == "" {
				t.Errorf("%s: %s has no %s (labels %v)", what, ob, k, ob.labels)
			}
			if ob.template != nil && ob.template[k] != ob.labels[k] {
				t.Errorf("%s: %s's pod template has %s=%q, the object %q", what, ob, k, ob.template[k], ob.labels[k])
			}
		}
		if ob.labels["app.kubernetes.io/part-of"] != partOf || ob.labels["app.kubernetes.io/managed-by"] != "kustomize" {
			t.Errorf("%s: %s is part-of %q, managed-by %q; want %s, kustomize", what, ob,
				ob.labels["app.kubernetes.io/part-of"], ob.labels["app.kubernetes.io/managed-by"], partOf)
		}
		if ob.template == nil {
			want, ok := versionOf[ob.labels["app.kubernetes.io/name"]]
			if !ok {
				want = serviceVersion
			}
			if v := ob.labels["app.kubernetes.io/version"]; v != want {
				t.Errorf("%s: %s has version %q, want %q", what, ob, v, want)
			}
		}
	}
}

func TestLabels_RecommendedOnEveryObjectAndPodTemplate(t *testing.T) {
	for _, dir := range []string{"k8s/base", "k8s/overlays/dev", "k8s/overlays/prod"} {
		checkLabels(t, dir, build(t, dir), "catga-example")
	}
	if v := build(t, "k8s/overlays/prod").deployments["order-service"].Labels["app.kubernetes.io/version"]; v != "1.0.0" {
		t.Errorf("prod order-service: version %q, want 1.0.0, the pinned tag", v)
	}
}
