// helm-render renders a Helm chart the way `helm template` does and checks
// every rendered manifest structurally. Helm itself is not installable on the
// machines we build on; its template engine is Go's text/template plus the
// Sprig function library and a handful of Helm functions (include, tpl,
// toYaml, fromYaml, required, lookup), which is exactly what this program
// provides, from Debian's golang and golang-github-masterminds-sprig-dev.
//
//	helm-render -chart helm/dmt [-f values.yaml ...] [-name R] [-namespace N] [-validate] [-out DIR]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func loadYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return out, nil
}

// merge overlays src onto dst recursively, as Helm merges values files.
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func render(chartDir string, values map[string]interface{}, release, namespace string) (map[string]string, error) {
	chart, err := loadYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"],
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{"Version": "v1.29.0", "Major": "1", "Minor": "29"},
		},
	}
	root := template.New("chart")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env") // Helm removes these so charts render the same everywhere
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		_ = yaml.Unmarshal([]byte(s), &m)
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} { return map[string]interface{}{} }
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	root.Funcs(funcs).Option("missingkey=zero")

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if _, err := root.New(filepath.Base(f)).Parse(string(data)); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
	}
	out := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, top); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out[name] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

type doc = map[string]interface{}

func get(d interface{}, path ...string) interface{} {
	for _, p := range path {
		m, ok := d.(map[string]interface{})
		if !ok {
			return nil
		}
		d = m[p]
	}
	return d
}

func list(d interface{}) []interface{} {
	l, _ := d.([]interface{})
	return l
}

// validate checks the structure Kubernetes would reject, plus the chart's own
// rules: non-root, read-only root filesystem, probes on declared ports, and
// selectors that actually select something.
func validate(docs []doc) []string {
	var errs []string
	fail := func(d doc, format string, a ...interface{}) {
		errs = append(errs, fmt.Sprintf("%v/%v: %s", d["kind"], get(d, "metadata", "name"), fmt.Sprintf(format, a...)))
	}
	podLabels := []map[string]interface{}{}
	for _, d := range docs {
		if d["apiVersion"] == nil || d["kind"] == nil {
			errs = append(errs, "document without apiVersion/kind")
			continue
		}
		name, _ := get(d, "metadata", "name").(string)
		if name == "" || len(name) > 63 || !dns1123.MatchString(name) {
			fail(d, "metadata.name %q is not a DNS-1123 label", name)
		}
		switch d["kind"] {
		case "Deployment", "StatefulSet", "Job":
			tmpl := get(d, "spec", "template")
			labels, _ := get(tmpl, "metadata", "labels").(map[string]interface{})
			if d["kind"] != "Job" {
				sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]interface{})
				if len(sel) == 0 {
					fail(d, "no spec.selector.matchLabels")
				}
				for k, v := range sel {
					if labels[k] != v {
						fail(d, "selector %s=%v does not match the pod template", k, v)
					}
				}
				podLabels = append(podLabels, labels)
			}
			if get(tmpl, "spec", "securityContext", "runAsNonRoot") != true {
				fail(d, "pod must set securityContext.runAsNonRoot: true")
			}
			containers := list(get(tmpl, "spec", "containers"))
			if len(containers) == 0 {
				fail(d, "no containers")
			}
			for _, c := range append(containers, list(get(tmpl, "spec", "initContainers"))...) {
				cname, _ := get(c, "name").(string)
				if cname == "" || get(c, "image") == nil || get(c, "image") == "" {
					fail(d, "container without name or image")
				}
				if get(c, "securityContext", "readOnlyRootFilesystem") != true ||
					get(c, "securityContext", "allowPrivilegeEscalation") != false {
					fail(d, "container %s must be read-only and not escalate privileges", cname)
				}
				ports := map[interface{}]bool{}
				for _, p := range list(get(c, "ports")) {
					ports[get(p, "containerPort")] = true
					ports[get(p, "name")] = true
					if n, ok := get(p, "containerPort").(int); !ok || n < 1 || n > 65535 {
						fail(d, "container %s has an invalid port", cname)
					}
				}
				for _, probe := range []string{"livenessProbe", "readinessProbe"} {
					pr := get(c, probe)
					if pr == nil {
						if d["kind"] != "Job" {
							fail(d, "container %s has no %s", cname, probe)
						}
						continue
					}
					port := get(pr, "httpGet", "port")
					if port == nil {
						port = get(pr, "tcpSocket", "port")
					}
					if port != nil && !ports[port] {
						fail(d, "container %s %s uses undeclared port %v", cname, probe, port)
					}
				}
				if get(c, "resources", "requests") == nil {
					fail(d, "container %s has no resource requests", cname)
				}
			}
		case "Service":
			if len(list(get(d, "spec", "ports"))) == 0 {
				fail(d, "service without ports")
			}
		case "PodDisruptionBudget", "NetworkPolicy":
		case "IngressRouteTCP", "IngressRoute":
			if len(list(get(d, "spec", "routes"))) == 0 {
				fail(d, "no routes")
			}
		}
	}
	selects := func(sel map[string]interface{}) bool {
		for _, labels := range podLabels {
			ok := true
			for k, v := range sel {
				if labels[k] != v {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	for _, d := range docs {
		var sel map[string]interface{}
		switch d["kind"] {
		case "Service":
			sel, _ = get(d, "spec", "selector").(map[string]interface{})
		case "PodDisruptionBudget", "NetworkPolicy":
			sel, _ = get(d, "spec", map[string]string{"PodDisruptionBudget": "selector", "NetworkPolicy": "podSelector"}[d["kind"].(string)], "matchLabels").(map[string]interface{})
		default:
			continue
		}
		if len(sel) == 0 || !selects(sel) {
			fail(d, "selector %v selects no workload of this chart", sel)
		}
	}
	return errs
}

func main() {
	chartDir := flag.String("chart", "helm/dmt", "chart directory")
	release := flag.String("name", "dmt", "release name")
	namespace := flag.String("namespace", "orch-infra", "namespace")
	outDir := flag.String("out", "", "write one file per template here instead of stdout")
	check := flag.Bool("validate", false, "check the rendered manifests and exit non-zero on problems")
	var valueFiles multiFlag
	flag.Var(&valueFiles, "f", "values file (repeatable)")
	flag.Parse()

	values, err := loadYAML(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
	for _, f := range valueFiles {
		v, err := loadYAML(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helm-render:", err)
			os.Exit(1)
		}
		values = merge(values, v)
	}
	rendered, err := render(*chartDir, values, *release, *namespace)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helm-render:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	var docs []doc
	var all strings.Builder
	for _, n := range names {
		for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(rendered[n], -1) {
			if strings.TrimSpace(part) == "" {
				continue
			}
			var d doc
			if err := yaml.Unmarshal([]byte(part), &d); err != nil {
				fmt.Fprintf(os.Stderr, "helm-render: %s: invalid YAML: %v\n", n, err)
				os.Exit(1)
			}
			if d == nil {
				continue
			}
			docs = append(docs, d)
			fmt.Fprintf(&all, "---\n# Source: %s\n%s\n", n, strings.TrimSpace(part))
		}
	}
	if *outDir != "" {
		_ = os.MkdirAll(*outDir, 0o755)
		_ = os.WriteFile(filepath.Join(*outDir, "manifests.yaml"), []byte(all.String()), 0o644)
	} else if !*check {
		fmt.Print(all.String())
	}
	if *check {
		kinds := map[string]int{}
		for _, d := range docs {
			kinds[fmt.Sprint(d["kind"])]++
		}
		for _, e := range validate(docs) {
			fmt.Fprintln(os.Stderr, "invalid:", e)
			defer os.Exit(1)
		}
		keys := make([]string, 0, len(kinds))
		for k := range kinds {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("%s %d\n", k, kinds[k])
		}
	}
}
