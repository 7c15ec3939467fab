// The pod sandbox's pause program, built here so the nodes need no image from the internet.
module govcloud.local/toolchain/pause

go 1.26.0
