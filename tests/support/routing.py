"""Routing rules tests share."""

# Hangzhou fasteners in turn between two reps; everything else to the public pool.
HANGZHOU_ROUND_ROBIN = """
rules:
  - name: hangzhou-fasteners
    when: {city: [杭州], category: [紧固件]}
    assign: {reps: [rep-zhang, rep-li], strategy: round_robin}
default: {pool: public}
"""
