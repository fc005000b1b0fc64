module calyptiapeer

go 1.25

require github.com/calyptia/plugin v1.4.3
