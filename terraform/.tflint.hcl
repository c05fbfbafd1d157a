# tflint with its bundled terraform ruleset only: the google ruleset (tflint-ruleset-google) is
# not served by the Go module proxy this project builds from, and `tflint --init` would download
# it. scripts/infra.sh runs `tflint --recursive` from this folder.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
