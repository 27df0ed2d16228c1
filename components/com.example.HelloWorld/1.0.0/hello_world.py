"""The hello-world component's artifact: greets the name it is given."""

import sys

message = f"Hello, {sys.argv[1] if len(sys.argv) > 1 else 'world'}!"
print(message)
