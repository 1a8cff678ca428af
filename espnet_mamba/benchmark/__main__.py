import sys

COMMANDS = {
    "scan": "espnet_mamba.benchmark.scan",
    "encoder": "espnet_mamba.benchmark.encoder",
    "decoder": "espnet_mamba.benchmark.decoder",
    "train": "espnet_mamba.benchmark.train",
    "longform": "espnet_mamba.benchmark.longform",
    "streaming": "espnet_mamba.benchmark.streaming",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m espnet_mamba.benchmark {" + ",".join(COMMANDS) + "} [--json] [options]\n"
              "       python -m espnet_mamba.benchmark <command> --help", file=sys.stderr)
        sys.exit(2)
    import importlib
    importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
