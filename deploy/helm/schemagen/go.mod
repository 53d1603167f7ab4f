// A tool of scripts/check-helm.sh, kept out of the gateway's module (and
// its dependency list): it imports the standard library only.
module github.com/switchyard/switchyard/deploy/helm/schemagen

go 1.26.0
